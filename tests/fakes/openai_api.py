#!/usr/bin/env python3
"""A scripted fake of OpenAI's Responses API, for running the real Codex CLI
without a model: POST /v1/responses answered with the documented
server-sent events (response.created, response.output_item.added/done,
response.output_text.delta, response.completed). A command to run becomes a
function_call of Codex's exec_command tool; its function_call_output comes
back in the next request. What it answers is agent_script.py's, shared
with the other fakes. Each request is appended, as JSON, to --log.

  openai_api.py --port PORT [--log FILE]     (port 0: pick one, print it)
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_script  # noqa: E402
from fake_http import JsonHandler, next_id, serve  # noqa: E402


def text_of(item):
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(c.get("text", "") for c in content or [] if "text" in c)


def decide(body):
    """The output items for this request."""
    items = body.get("input", [])
    # The newest relevant item: a tool's output, or the user's last message.
    for item in reversed(items):
        if item.get("type") == "function_call_output":
            output = item.get("output")
            if isinstance(output, dict):
                output = output.get("content", json.dumps(output))
            text, command = agent_script.after_tool(str(output))
            break
        if item.get("type") == "message" and item.get("role") == "user":
            text, command = agent_script.answer(text_of(item))
            break
    else:
        text, command = agent_script.answer("")
    out = [{"id": next_id("msg"), "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}]
    if command is not None:
        out.append({"id": next_id("fc"), "type": "function_call", "status": "completed",
                    "call_id": next_id("call"), "name": "exec_command",
                    "arguments": json.dumps({"cmd": command})})
    return out


class Handler(JsonHandler):
    def do_GET(self):
        if self.path.split("?")[0].endswith("/models"):
            return self._json(200, {"object": "list", "data": [], "models": []})
        self._json(404, {"error": {"message": "not found: " + self.path, "type": "invalid_request_error"}})

    def do_POST(self):
        body = self._read_json()
        if body is None:
            return
        if not self.path.split("?")[0].endswith("/responses"):
            return self._json(404, {"error": {"message": "not found: " + self.path,
                                              "type": "invalid_request_error"}})
        self._log(body)
        output = decide(body)
        response = {"id": next_id("resp"), "object": "response", "created_at": int(time.time()),
                    "status": "completed", "model": body.get("model", "gpt-fake"),
                    "output": output,
                    "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 0},
                              "total_tokens": 150}}
        self._start_events()
        seq = [0]

        def event(data):
            data["sequence_number"] = seq[0]
            seq[0] += 1
            self._event(data["type"], data)

        event({"type": "response.created",
               "response": dict(response, status="in_progress", output=[], usage=None)})
        for i, item in enumerate(output):
            event({"type": "response.output_item.added", "output_index": i,
                   "item": dict(item, status="in_progress")})
            if item["type"] == "message":
                event({"type": "response.output_text.delta", "item_id": item["id"],
                       "output_index": i, "content_index": 0,
                       "delta": item["content"][0]["text"]})
            event({"type": "response.output_item.done", "output_index": i, "item": item})
        event({"type": "response.completed", "response": response})


if __name__ == "__main__":
    serve(Handler)
