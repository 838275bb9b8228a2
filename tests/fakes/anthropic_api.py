#!/usr/bin/env python3
"""A scripted fake of Anthropic's Messages API, for running the real Claude
Code CLI without a model: POST /v1/messages answered with the documented
server-sent events (message_start, content_block_start/delta/stop,
message_delta, message_stop), or a JSON message when stream is false.

What it answers is agent_script.py's, shared with the other fakes; a
command to run becomes a Bash tool_use.
Each request is appended, as JSON, to --log (for tests to read).

  anthropic_api.py --port PORT [--log FILE]     (port 0: pick one, print it)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_script  # noqa: E402
from fake_http import JsonHandler, next_id, serve  # noqa: E402


def text_of(content):
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            parts.append(text_of(block.get("content")))
    return "\n".join(parts)


def said_in(content):
    """What the user wrote: Claude Code sends system reminders as text
    blocks around the user's words; the script reads the rest."""
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or []
                     if b.get("type") == "text"
                     and not b.get("text", "").lstrip().startswith("<system-reminder>"))


def decide(body):
    """The assistant's content blocks and stop reason for this request."""
    # The conversation's last user turn (Claude Code may append other roles,
    # e.g. environment notes, after it).
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    last = users[-1] if users else {"content": ""}
    content = last.get("content")
    def is_tool_result(m):
        c = m.get("content")
        return isinstance(c, list) and any(b.get("type") == "tool_result" for b in c)
    # What the user (or the platform) said, oldest first, and in this turn.
    turns = [said_in(m.get("content")) for m in users if not is_tool_result(m)]
    said = turns[-1] if turns else ""
    if is_tool_result(last):
        step = agent_script.chain_after_tool(text_of(content), said)
        text, command = step or agent_script.after_tool(text_of(content))
    else:
        step = agent_script.chain_step(said_in(content), turns)
        text, command = step or agent_script.answer(said_in(content),
                                                    said_in(users[0].get("content")))
    blocks = [{"type": "text", "text": text}]
    if command is None:
        return blocks, "end_turn"
    blocks.append({"type": "tool_use", "id": next_id("toolu"), "name": "Bash",
                   "input": {"command": command, "description": "orchestrator CLI"}})
    return blocks, "tool_use"


class Handler(JsonHandler):
    def do_GET(self):
        self._json(200, {"data": [], "has_more": False})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self):
        body = self._read_json()
        if body is None:
            return
        path = self.path.split("?")[0]
        if path.endswith("/count_tokens"):
            return self._json(200, {"input_tokens": 100})
        if not path.endswith("/v1/messages"):
            return self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                "message": path}})
        self._log(body)
        blocks, stop = decide(body)
        model = body.get("model", "claude-fake")
        usage = {"input_tokens": 120, "output_tokens": 30, "cache_read_input_tokens": 0,
                 "cache_creation_input_tokens": 0}
        message = {"id": next_id("msg"), "type": "message", "role": "assistant", "model": model,
                   "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            return self._json(200, message)
        self._start_events()
        event = self._event

        start = dict(message, content=[], stop_reason=None,
                     usage={"input_tokens": 120, "output_tokens": 1})
        event("message_start", {"type": "message_start", "message": start})
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                event("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {"type": "text", "text": ""}})
                event("content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "text_delta", "text": block["text"]}})
            else:
                event("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {"type": "tool_use", "id": block["id"],
                                                                "name": block["name"], "input": {}}})
                event("content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "input_json_delta",
                                                        "partial_json": json.dumps(block["input"])}})
            event("content_block_stop", {"type": "content_block_stop", "index": i})
        event("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": stop, "stop_sequence": None},
                                "usage": {"output_tokens": 30}})
        event("message_stop", {"type": "message_stop"})


if __name__ == "__main__":
    serve(Handler)
