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
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_script  # noqa: E402

LOCK = threading.Lock()
COUNTER = [0]


def next_id(prefix):
    with LOCK:
        COUNTER[0] += 1
        return "%s_%04d" % (prefix, COUNTER[0])


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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_file = None

    def log_message(self, *args):
        pass

    def _json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.split("?")[0].endswith("/models"):
            return self._json(200, {"object": "list", "data": [], "models": []})
        self._json(404, {"error": {"message": "not found: " + self.path, "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._json(400, {"error": {"message": "body is not JSON",
                                              "type": "invalid_request_error"}})
        if not self.path.split("?")[0].endswith("/responses"):
            return self._json(404, {"error": {"message": "not found: " + self.path,
                                              "type": "invalid_request_error"}})
        if Handler.log_file:
            with LOCK, open(Handler.log_file, "a") as f:
                f.write(json.dumps({"path": self.path, "body": body}) + "\n")
        output = decide(body)
        response = {"id": next_id("resp"), "object": "response", "created_at": int(time.time()),
                    "status": "completed", "model": body.get("model", "gpt-fake"),
                    "output": output,
                    "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 0},
                              "total_tokens": 150}}
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        seq = [0]

        def event(data):
            data["sequence_number"] = seq[0]
            seq[0] += 1
            self.wfile.write(("event: %s\ndata: %s\n\n" % (data["type"], json.dumps(data))).encode())
            self.wfile.flush()

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
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    args = ap.parse_args()
    Handler.log_file = args.log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
