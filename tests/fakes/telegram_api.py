#!/usr/bin/env python3
"""A fake of the Telegram Bot API (https://core.telegram.org/bots/api), for
running a bot without Telegram. Methods live at /bot<TOKEN>/<method> and take
their parameters as a JSON body, a urlencoded or multipart form, or the query
string; every answer is {"ok": true, "result": ...} or {"ok": false,
"error_code": N, "description": "..."} (429s add parameters.retry_after).
A token other than --token is 401 Unauthorized, an unknown method 404.

Bot methods: getMe, getUpdates (long polling; an offset confirms every
update below it), sendMessage (HTML parse_mode parsed the way Telegram does,
4096 UTF-16 code units after parsing), sendChatAction, answerCallbackQuery,
editMessageText, setWebhook, deleteWebhook, getWebhookInfo. Each call is
recorded, and appended as JSON to --log.

The test drives it under /control/ (not Telegram's):
  POST /control/message   {"from_id", "text", "first_name"?, "username"?, "chat_id"?}
  POST /control/callback  {"from_id", "data", "message_id", "chat_id"?}
  POST /control/update    {an Update without update_id}: queued as it is
        each of the three answers {"update_id": N, "update": {...}}
  GET  /control/calls?method=M&PARAM=V   {"calls": [{"method", "params", "time"}...]}
  POST /control/rate_limit {"method", "count"?: 1, "retry_after"?: 1}
  GET  /control/polls      {"polls": [{"offset", "update_ids"}...]}

  telegram_api.py --port PORT [--log FILE] [--token TOKEN]   (port 0: pick one, print it)
"""
import copy
import json
import os
import re
import string
import sys
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_http import JsonHandler, serve  # noqa: E402

MAX_TEXT = 4096  # UTF-16 code units, after entity parsing
FIRST_UPDATE_ID = 1000
CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice",
                "upload_voice", "upload_document", "choose_sticker", "find_location",
                "record_video_note", "upload_video_note"}
# Parameters that arrive as strings from a form or the query string.
INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time",
              "max_connections", "reply_to_message_id", "message_thread_id"}
JSON_PARAMS = {"reply_markup", "allowed_updates", "entities", "reply_parameters",
               "link_preview_options"}


class TelegramError(Exception):
    def __init__(self, code, description, parameters=None):
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def reply(self):
        body = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad(description):
    return TelegramError(400, "Bad Request: " + description)


def utf16_len(text):
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# --- HTML parse_mode, after TDLib's parse_html (td/telegram/MessageEntity.cpp) ---

HTML_TAGS = {"a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
             "tg-spoiler", "tg-emoji", "code", "pre", "blockquote"}
HTML_SPACE = " \t\r\n\v\f\0"  # TDLib's is_space; "\0" stands for the end of the text
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _html_entity(s, i):
    """The character of the entity at s[i] == "&" and the index after it, or
    None: &lt; &gt; &amp; &quot; and numeric ones (";" optional, as TDLib)."""
    j = i + 1
    if s.startswith("#", j):
        j += 1
        hexadecimal = s.startswith("x", j)
        j += hexadecimal
        digits = string.hexdigits if hexadecimal else string.digits
        k = j
        while k < len(s) and s[k] in digits:
            k += 1
        code = int(s[j:k], 16 if hexadecimal else 10) if k > j else 0
        if code == 0 or code >= 0x10FFFF or k - i >= 10:
            return None
        char = chr(code)
    else:
        k = j
        while k < len(s) and s[k] in string.ascii_letters:
            k += 1
        char = NAMED_ENTITIES.get(s[j:k])
        if char is None:
            return None
    return char, k + 1 if s.startswith(";", k) else k


def parse_html(s):
    """The plain text of s in parse_mode HTML, or TelegramError 400."""
    def at(k):
        return s[k] if k < len(s) else "\0"

    def fail(what, k=None):
        if k is not None:
            what += " at byte offset %d" % len(s[:k].encode("utf-8", "surrogatepass"))
        return bad("can't parse entities: " + what)

    out, open_tags, i = [], [], 0
    while i < len(s):
        c = s[i]
        if c == "&":
            entity = _html_entity(s, i)
            if entity is None:
                # Telegram's documentation asks for every "&" outside an entity
                # to be written as &amp;; this fake holds bots to it.
                raise fail('Unescaped "&"', i)
            out.append(entity[0])
            i = entity[1]
            continue
        if c != "<":
            out.append(c)
            i += 1
            continue
        begin, i = i, i + 1
        if at(i) != "/":
            while at(i) not in HTML_SPACE and at(i) != ">":
                i += 1
            if i >= len(s):
                raise fail("Unclosed start tag", begin)
            tag = s[begin + 1:i].lower()
            if tag not in HTML_TAGS:
                raise fail('Unsupported start tag "%s"' % tag, begin)
            argument = ""
            while at(i) != ">":
                while i < len(s) and s[i] in HTML_SPACE:
                    i += 1
                if at(i) == ">":
                    break
                name_begin = i
                while at(i) not in HTML_SPACE and at(i) not in "=>":
                    i += 1
                name = s[name_begin:i]
                if not name:
                    raise fail('Empty attribute name in the tag "%s"' % tag, begin)
                while i < len(s) and s[i] in HTML_SPACE:
                    i += 1
                if at(i) != "=":
                    if tag == "blockquote" and name == "expandable":
                        continue
                    raise fail('Expected equal sign in declaration of an attribute of the tag "%s"'
                               % tag, begin)
                i += 1
                while i < len(s) and s[i] in HTML_SPACE:
                    i += 1
                if i >= len(s):
                    raise fail('Unclosed start tag "%s"' % tag, begin)
                if s[i] not in "'\"":
                    # A name token: letters, digits, periods and hyphens.
                    token_begin = i
                    while at(i).isascii() and (at(i).isalnum() or at(i) in ".-"):
                        i += 1
                    value = s[token_begin:i].lower()
                    if at(i) not in HTML_SPACE and at(i) != ">":
                        raise fail("Unexpected end of name token", token_begin)
                else:
                    quote, chars = s[i], []
                    i += 1
                    while i < len(s) and s[i] != quote:
                        entity = _html_entity(s, i) if s[i] == "&" else None
                        if entity:
                            chars.append(entity[0])
                            i = entity[1]
                        else:
                            chars.append(s[i])
                            i += 1
                    i += 1
                    value = "".join(chars)
                if i >= len(s):
                    raise fail("Unclosed start tag", begin)
                if (tag, name) in (("a", "href"), ("tg-emoji", "emoji-id")):
                    argument = value
                elif tag == "span" and name == "class" and value.startswith("tg-"):
                    argument = value[3:]
            if tag == "span" and argument != "spoiler":
                raise fail('Tag "span" must have class "tg-spoiler"', begin)
            if tag == "tg-emoji" and not argument.isdigit():
                raise bad("Invalid custom emoji identifier specified")
            open_tags.append(tag)
            i += 1
        else:
            if not open_tags:
                raise fail("Unexpected end tag", begin)
            while at(i) not in HTML_SPACE and at(i) != ">":
                i += 1
            end_tag = s[begin + 2:i]
            while i < len(s) and s[i] in HTML_SPACE:
                i += 1
            if at(i) != ">":
                raise fail("Unclosed end tag", begin)
            tag = open_tags.pop()
            if end_tag and end_tag != tag:
                raise fail('Unmatched end tag at byte offset %d, expected "</%s>", found "</%s>"'
                           % (len(s[:begin].encode("utf-8", "surrogatepass")), tag, end_tag))
            i += 1
    if open_tags:
        raise fail("Can't find end tag corresponding to start tag " + open_tags[-1])
    text = "".join(out)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise fail("Text contains invalid Unicode characters after decoding HTML entities, "
                   "check for unmatched surrogate code units")
    return text


def message_text(params):
    """The plain text a sendMessage/editMessageText would show."""
    text = params.get("text")
    text = "" if text is None else str(text)
    parse_mode = str(params.get("parse_mode") or "").lower()
    if parse_mode == "html":
        text = parse_html(text)
    elif parse_mode not in ("", "markdown", "markdownv2"):
        raise bad("unsupported parse_mode")
    # (Markdown modes are passed through unparsed.)
    if not text.strip():
        raise bad("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad("message is too long")
    return text


def reply_markup(params):
    """The reply_markup parameter as an object (None when absent)."""
    markup = params.get("reply_markup")
    if markup in (None, ""):
        return None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad('can\'t parse inline keyboard button: Field "inline_keyboard" must be of '
                  'type Array')
    for button in (b for row in rows for b in row):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise bad('can\'t parse inline keyboard button: Field "text" must be of type String')
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                raise bad("BUTTON_DATA_INVALID")
        elif len(button) == 1:
            raise bad("can't parse inline keyboard button: Text buttons are unallowed in the "
                      "inline keyboard")
    return markup


def int_param(params, name, default=None, error=None):
    value = params.get(name)
    if value in (None, ""):
        if error:
            raise bad(error)
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise bad("chat not found" if name == "chat_id" else "invalid %s specified" % name)


def true_param(params, name):
    return str(params.get(name, "")).lower() in ("true", "1")


def bot_user():
    """The bot, as a User: its id is the token's number, as on Telegram."""
    head = Handler.options.token.split(":")[0]
    return {"id": int(head) if head.isdigit() else 123456, "is_bot": True,
            "first_name": "Test Bot", "username": "test_bot"}


def control_int(body, name, default=None):
    """An integer field of a /control/ request (required without default)."""
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("%s (an integer) is required" % name)
    return value


class Bot:
    """Everything the fake remembers, under one condition variable (which
    long polls wait on)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.updates = []           # unconfirmed, oldest first
        self.next_update_id = FIRST_UPDATE_ID
        self.calls, self.polls = [], []
        self.rate_limits = {}       # method -> [count, retry_after]
        self.users, self.chats = {}, {}
        self.next_message_id = {}   # chat id -> the next message_id in it
        self.messages = {}          # (chat id, message_id) -> Message
        self.sources = {}           # (chat id, message_id) -> (text, parse_mode) sent
        self.callback_ids = set()
        self.next_callback = 0
        self.poll_generation = 0
        self.webhook = ""

    # --- helpers; the caller holds self.cond ---

    def chat(self, chat_id):
        if chat_id not in self.chats:
            if chat_id < 0:
                self.chats[chat_id] = {"id": chat_id, "type": "group", "title": "Test group"}
            else:
                user = self.users.get(chat_id, {})
                chat = {"id": chat_id, "type": "private",
                        "first_name": user.get("first_name", "Test")}
                if "username" in user:
                    chat["username"] = user["username"]
                self.chats[chat_id] = chat
        return self.chats[chat_id]

    def sender(self, body):
        from_id = control_int(body, "from_id")
        user = self.users.setdefault(from_id, {"id": from_id, "is_bot": False,
                                               "first_name": "Test"})
        for key in ("first_name", "last_name", "username", "language_code"):
            if key in body:
                user[key] = body[key]
        self.chats.pop(from_id, None)  # its private chat shows the new names
        return user

    def new_message_id(self, chat_id):
        message_id = self.next_message_id.get(chat_id, 1)
        self.next_message_id[chat_id] = message_id + 1
        return message_id

    def queue(self, update):
        update = dict(update_id=self.next_update_id, **copy.deepcopy(update))
        self.next_update_id += 1
        self.updates.append(update)
        query = update.get("callback_query")
        if isinstance(query, dict) and "id" in query:
            self.callback_ids.add(str(query["id"]))
        self.cond.notify_all()
        return {"update_id": update["update_id"], "update": update}

    # --- /control/ ---

    def control_message(self, body):
        user = self.sender(body)
        chat_id = control_int(body, "chat_id", user["id"])
        text = str(body.get("text", ""))
        message = {"message_id": self.new_message_id(chat_id), "from": user,
                   "chat": self.chat(chat_id), "date": int(time.time()), "text": text}
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": utf16_len(command.group(0))}]
        self.messages[(chat_id, message["message_id"])] = message
        return self.queue({"message": message})

    def control_callback(self, body):
        user = self.sender(body)
        chat_id = control_int(body, "chat_id", user["id"])
        message_id = control_int(body, "message_id")
        message = self.messages.get((chat_id, message_id)) or {
            "message_id": message_id, "from": bot_user(), "chat": self.chat(chat_id),
            "date": int(time.time()), "text": ""}
        self.next_callback += 1
        query = {"id": str(4000000000000000000 + self.next_callback), "from": user,
                 "message": message, "chat_instance": str(8000000000000000000 + abs(chat_id)),
                 "data": str(body.get("data", ""))}
        return self.queue({"callback_query": query})

    def control_rate_limit(self, body):
        method = METHODS.get(str(body.get("method", "")).lower())
        if method is None:
            raise ValueError("unknown method %r" % body.get("method"))
        self.rate_limits[method.__name__] = [int(body.get("count", 1)),
                                             int(body.get("retry_after", 1))]
        return {"ok": True}

    def control_calls(self, query):
        def matches(call):
            return all(call["method"] == value if key == "method"
                       else str(call["params"].get(key)) == value
                       for key, value in query.items())
        return {"calls": [c for c in self.calls if matches(c)]}

    # --- bot methods; each gets the parameters, answers the result ---

    def getMe(self, params):
        return dict(bot_user(), can_join_groups=True, can_read_all_group_messages=False,
                    supports_inline_queries=False)

    def getUpdates(self, params):
        if self.webhook:
            raise TelegramError(409, "Conflict: can't use getUpdates method while webhook is "
                                     "active; use deleteWebhook to delete the webhook first")
        offset = int_param(params, "offset")
        limit = min(max(int_param(params, "limit", 100), 1), 100)
        timeout = max(int_param(params, "timeout", 0), 0)
        if offset is not None and offset < 0:
            del self.updates[:offset]   # keep the last -offset, forget the rest
        elif offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        # A newer getUpdates ends this one, as on Telegram.
        self.poll_generation += 1
        generation = self.poll_generation
        self.cond.notify_all()
        poll = {"offset": offset, "update_ids": []}
        self.polls.append(poll)
        deadline = time.monotonic() + timeout
        while True:
            if generation != self.poll_generation:
                poll["terminated"] = True
                raise TelegramError(409, "Conflict: terminated by other getUpdates request; make "
                                         "sure that only one bot instance is running")
            found = self.updates[:limit]
            left = deadline - time.monotonic()
            if found or left <= 0 or self.webhook:
                break
            self.cond.wait(left)
        poll["update_ids"] = [u["update_id"] for u in found]
        return copy.deepcopy(found)

    def sendMessage(self, params):
        chat_id = int_param(params, "chat_id", error="chat_id is empty")
        text = message_text(params)
        markup = reply_markup(params)
        message = {"message_id": self.new_message_id(chat_id), "from": bot_user(),
                   "chat": self.chat(chat_id), "date": int(time.time()), "text": text}
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
        key = (chat_id, message["message_id"])
        self.messages[key] = message
        self.sources[key] = (params.get("text"), params.get("parse_mode"))
        return copy.deepcopy(message)

    def editMessageText(self, params):
        if params.get("inline_message_id"):
            raise bad("message to edit not found")
        chat_id = int_param(params, "chat_id", error="chat_id is empty")
        message_id = int_param(params, "message_id", error="message identifier is not specified")
        text = message_text(params)
        markup = reply_markup(params)
        key = (chat_id, message_id)
        old = self.messages.get(key)
        if old is None:
            raise bad("message to edit not found")
        if not old["from"]["is_bot"]:
            raise bad("message can't be edited")
        message = {k: v for k, v in old.items() if k != "reply_markup"}
        message.update(text=text, edit_date=int(time.time()))
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
        source = (params.get("text"), params.get("parse_mode"))
        if (source == self.sources.get(key) and text == old["text"]
                and message.get("reply_markup") == old.get("reply_markup")):
            raise bad("message is not modified: specified new message content and reply markup "
                      "are exactly the same as a current content and reply markup of the message")
        self.messages[key] = message
        self.sources[key] = source
        return copy.deepcopy(message)

    def sendChatAction(self, params):
        int_param(params, "chat_id", error="chat_id is empty")
        if params.get("action") not in CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        return True

    def answerCallbackQuery(self, params):
        if str(params.get("callback_query_id", "")) not in self.callback_ids:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        return True

    def setWebhook(self, params):
        url = str(params.get("url") or "")
        if url and not url.lower().startswith("https://"):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = url
        if true_param(params, "drop_pending_updates"):
            self.updates.clear()
        self.cond.notify_all()
        return True

    def deleteWebhook(self, params):
        self.webhook = ""
        if true_param(params, "drop_pending_updates"):
            self.updates.clear()
        return True

    def getWebhookInfo(self, params):
        return {"url": self.webhook, "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}


METHODS = {name.lower(): getattr(Bot, name) for name in (
    "getMe", "getUpdates", "sendMessage", "editMessageText", "sendChatAction",
    "answerCallbackQuery", "setWebhook", "deleteWebhook", "getWebhookInfo")}
BOT = Bot()


def request_params(query, content_type, body):
    """The method's parameters: the query string's, then the body's (a JSON
    object, a urlencoded or a multipart form). Form values that should be
    integers or JSON are decoded, so calls read the same however they came."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" and body.strip():
        try:
            parsed = json.loads(body)
        except ValueError:
            raise bad("can't parse JSON object")
        if not isinstance(parsed, dict):
            raise bad("can't parse JSON object")
        params.update(parsed)
    elif kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif kind == "multipart/form-data":
        form = BytesParser(policy=HTTP).parsebytes(
            b"content-type: " + content_type.encode() + b"\r\n\r\n" + body)
        for part in form.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                params[name] = part.get_payload(decode=True).decode("utf-8", "replace")
    for name, value in params.items():
        if not isinstance(value, str):
            continue
        if name in INT_PARAMS and re.fullmatch(r"-?\d+", value.strip()):
            params[name] = int(value)
        elif name in JSON_PARAMS and value.strip():
            try:
                params[name] = json.loads(value)
            except ValueError:
                if name == "reply_markup":
                    raise bad("can't parse reply keyboard markup JSON object")
    return params


class Handler(JsonHandler):
    def do_GET(self):
        self._route(self._read_body())

    def do_POST(self):
        self._route(self._read_body())

    def _reply(self, code, obj):
        try:
            self._json(code, obj)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a long poll whose client gave up

    def _route(self, body):
        url = urlsplit(self.path)
        path = unquote(url.path)
        if path.startswith("/control/"):
            return self._control(path[len("/control/"):], url.query, body)
        match = re.fullmatch(r"/bot([^/]*)/([^/]*)", path)
        if not match:
            return self._reply(404, TelegramError(404, "Not Found").reply())
        self._bot_call(match.group(1), match.group(2), url.query, body)

    def _bot_call(self, token, name, query, body):
        method = METHODS.get(name.lower())
        call = {"method": method.__name__ if method else name, "params": {},
                "time": time.time()}
        try:
            try:
                call["params"] = request_params(query, self.headers.get("content-type", ""), body)
            finally:
                with BOT.cond:
                    BOT.calls.append(call)
                self._log({"method": call["method"], "params": call["params"]})
            if token != self.options.token:
                raise TelegramError(401, "Unauthorized")
            if method is None:
                raise TelegramError(404, "Not Found")
            with BOT.cond:
                limit = BOT.rate_limits.get(method.__name__)
                if limit and limit[0] > 0:
                    limit[0] -= 1
                    call["rejected"] = True
                    raise TelegramError(429, "Too Many Requests: retry after %d" % limit[1],
                                        {"retry_after": limit[1]})
                result = method(BOT, call["params"])
                call["result"] = result
        except TelegramError as e:
            with BOT.cond:
                call["error"] = e.description
            return self._reply(e.code, e.reply())
        self._reply(200, {"ok": True, "result": result})

    def _control(self, name, query, body):
        post = {"message": BOT.control_message, "callback": BOT.control_callback,
                "update": BOT.queue, "rate_limit": BOT.control_rate_limit}
        get = {"calls": lambda: BOT.control_calls(dict(parse_qsl(query))),
               "polls": lambda: {"polls": BOT.polls}}
        try:
            with BOT.cond:
                if self.command == "GET" and name in get:
                    answer = copy.deepcopy(get[name]())
                elif self.command == "POST" and name in post:
                    request = json.loads(body or b"{}")
                    if not isinstance(request, dict):
                        raise ValueError("the body must be a JSON object")
                    request.pop("update_id", None)
                    answer = copy.deepcopy(post[name](request))
                else:
                    return self._reply(404, {"error": "no such control endpoint: %s %s"
                                                      % (self.command, name)})
        except ValueError as e:  # json.JSONDecodeError included
            return self._reply(400, {"error": str(e)})
        self._reply(200, answer)


def add_options(parser):
    parser.add_argument("--token", default="123456:TEST")


if __name__ == "__main__":
    serve(Handler, add_options)
