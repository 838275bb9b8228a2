#!/usr/bin/env bash
# Telegram end to end: the gateway's bridge against a fake Bot API that
# follows the Bot API's documented shapes, in front of the whole mesh with
# the scripted PO agent in its sandbox. A user's message reaches the agent
# and the reply comes back through sendMessage (with "typing" meanwhile,
# split at 4096 and HTML-escaped); commands; a job's notification reaches
# the chat; /cancel confirmed with an inline button; the PO asks before a
# destructive step with buttons and acts on the pick; a stranger is refused
# politely; a 429 is waited out; the long-polling offset survives a
# restart (nothing lost, nothing repeated); the webhook refuses a forged
# secret.
#
#   bash tests/e2e/telegram_e2e.sh <orchestratord> <orchestrator-gateway>
set -euo pipefail

[ $# -eq 2 ] || {
  echo "usage: $0 <orchestratord> <orchestrator-gateway>" >&2
  exit 2
}
orchestratord="$1"
gateway="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

# The fake Bot API.
bot_token="123456:TEST-token"
/usr/bin/python3 "$here/../fakes/telegram_api.py" --port 0 --token "$bot_token" \
  --log "$work/telegram.log" >"$work/telegram.port" 2>"$work/telegram.err" &
fake_pid=$!
trap 'status=$?; set +e; kill "$fake_pid" 2>/dev/null; (exit "$status"); cleanup' EXIT
for _ in $(seq 50); do [ -s "$work/telegram.port" ] && break; sleep 0.1; done
tg="http://127.0.0.1:$(cat "$work/telegram.port")"

port="$(free_port)"
start_orchestratord "$orchestratord" "127.0.0.1:$port" --demo_jobs
wait_for 30 "the bootstrap token" test -s "$work/admin.token"
admin="$(cat "$work/admin.token")"

# Ann, an ordinary user, is Telegram user 4242.
start_gateway "$gateway" "127.0.0.1:$port"
as_admin=(-H "authorization: Bearer $admin" -H "content-type: application/json")
ann_id="$(curl -s "${as_admin[@]}" -d '{"name":"ann","displayName":"Ann"}' "$gateway_url/v1/users" | json_get user.id)"
[ -n "$ann_id" ] || fatal "could not create user ann"
ann_token="$(curl -s "${as_admin[@]}" -d '{"description":"telegram"}' "$gateway_url/v1/users/$ann_id/tokens" | json_get value)"
[ -n "$ann_token" ] || fatal "could not create ann's token"
stop_gateway

echo "$bot_token" >"$work/bot.token"
printf '# telegram id, orchestrator token\n4242 %s\n' "$ann_token" >"$work/telegram.users"
telegram_flags=(--telegram_mode=polling --telegram_api_base="$tg" --telegram_token_file="$work/bot.token"
  --telegram_users="$work/telegram.users" --telegram_state="$work/telegram.state")
start_gateway "$gateway" "127.0.0.1:$port" "${telegram_flags[@]}"

say() { # say FROM TEXT: a user writes to the bot; prints the update id
  /usr/bin/python3 -c 'import json, sys; print(json.dumps({"from_id": int(sys.argv[1]), "text": sys.argv[2], "first_name": "Ann"}))' "$1" "$2" |
    curl -s -d @- "$tg/control/message" | json_get update_id
}
# sent METHOD CHAT: the bot's calls of METHOD to CHAT, one JSON per line.
sent() {
  curl -s "$tg/control/calls?method=$1&chat_id=$2" | /usr/bin/python3 -c '
import json, sys
for c in json.load(sys.stdin)["calls"]:
    if not c.get("rejected") and not c.get("error"):
        print(json.dumps(c["params"], ensure_ascii=False))'
}
# wait_sent SECONDS WHAT METHOD CHAT SUBSTRING: until the bot sent it.
wait_sent() {
  local deadline=$((SECONDS + $1))
  until sent "$3" "$4" | grep -qF -- "$5"; do
    ((SECONDS < deadline)) || {
      fail "$2: no $3 to $4 with '$5' within $1 s; sent: $(sent "$3" "$4" | tail -3)"
      return 0
    }
    sleep 0.2
  done
}

mark
say 4242 /start >/dev/null
wait_sent 15 "/start" sendMessage 4242 "/projects"
pass "/start answers with the commands"

mark
say 4242 "please create project shop" >/dev/null
wait_sent 60 "a message to the PO agent" sendMessage 4242 "Created project shop"
sent sendChatAction 4242 | grep -q '"typing"' || fail "no typing while the agent worked"
curl -s -H "authorization: Bearer $ann_token" "$gateway_url/v1/projects" | grep -q '"name":"shop"' ||
  fail "the agent's project is not Ann's"
pass "a message reaches the PO agent; its reply comes back through sendMessage, typing meanwhile"

mark
say 4242 /projects >/dev/null
wait_sent 15 "/projects" sendMessage 4242 "• shop"
say 4242 /status >/dev/null
wait_sent 15 "/status" sendMessage 4242 "Session "
pass "/projects and /status"

mark
say 777 "hello?" >/dev/null
wait_sent 15 "a stranger" sendMessage 777 "only works for its team"
[ "$(sent sendMessage 777 | wc -l)" = 1 ] || fail "the stranger got more than the refusal"
grep -q '"chat_id": 777' <(sent sendChatAction 777) && fail "a stranger's message reached an agent"
pass "a user not on the allowlist is refused politely"

mark
say 4242 "start a demo job" >/dev/null
wait_sent 60 "a demo job" sendMessage 4242 "Started job"
wait_sent 60 "the job's notification" sendMessage 4242 "succeeded"
pass "a notification for a finished job reaches the chat"

mark
# A long answer: Ann's own 5000 characters, full of HTML, come back whole in two messages.
long="$(/usr/bin/python3 -c 'print(("<b>&amp; " * 500)[:4990] + " THE-END")')"
say 4242 "$long" >/dev/null
wait_sent 60 "the long message's reply" sendMessage 4242 "I can create a project"
before="$(sent sendMessage 4242 | wc -l)"
say 4242 "what did i ask" >/dev/null
wait_sent 60 "the echo" sendMessage 4242 "THE-END"
sent sendMessage 4242 | tail -n +$((before + 1)) | /usr/bin/python3 -c '
import html, json, sys
texts = [json.loads(l)["text"] for l in sys.stdin]
assert len(texts) == 2, "want 2 parts, got %d" % len(texts)
plain = "".join(html.unescape(t) for t in texts)
assert "<b>&amp; <b>&amp;" in plain and plain.rstrip().endswith("THE-END\""), plain[-80:]
' || fail "the long reply was not split in two escaped parts"
pass "a reply over 4096 characters is split and escaped"

mark
job="$(curl -s -H "authorization: Bearer $ann_token" -H 'content-type: application/json' \
  -d '{"kind":"demo.sleep","params":{"seconds":120,"steps":2}}' "$gateway_url/v1/jobs:enqueueDemo" | json_get job.id)"
say 4242 "/cancel $job" >/dev/null
wait_sent 15 "/cancel" sendMessage 4242 "cancel!:$job"
# The confirmation the bot sent: its id, and a button carrying the job.
msg_id="$(curl -s "$tg/control/calls?method=sendMessage&chat_id=4242" | /usr/bin/python3 -c '
import json, sys
job = sys.argv[1]
for c in reversed(json.load(sys.stdin)["calls"]):
    rows = (c["params"].get("reply_markup") or {}).get("inline_keyboard") or []
    if any(b.get("callback_data") == "cancel!:" + job for row in rows for b in row) and "result" in c:
        print(c["result"]["message_id"])
        break' "$job")"
[ -n "$msg_id" ] || fatal "no confirmation with a 'cancel!:$job' button"
curl -s -d "{\"from_id\":4242,\"data\":\"cancel!:$job\",\"message_id\":$msg_id}" "$tg/control/callback" >/dev/null
deadline=$((SECONDS + 15))
until curl -s -H "authorization: Bearer $ann_token" "$gateway_url/v1/jobs/$job" | grep -q JOB_STATE_CANCELLED; do
  ((SECONDS < deadline)) || {
    fail "the job was not cancelled by the button"
    break
  }
  sleep 0.3
done
# The button is answered, and the question becomes the outcome.
deadline=$((SECONDS + 10))
until curl -s "$tg/control/calls?method=editMessageText&chat_id=4242" | grep -q "$job is"; do
  ((SECONDS < deadline)) || break
  sleep 0.2
done
curl -s "$tg/control/calls?method=answerCallbackQuery" | grep -q '"Cancelled"' ||
  fail "the button press was not answered"
curl -s "$tg/control/calls?method=editMessageText&chat_id=4242" | /usr/bin/python3 -c '
import json, sys
msg, job = int(sys.argv[1]), sys.argv[2]
edits = [c for c in json.load(sys.stdin)["calls"] if c["params"].get("message_id") == msg and "error" not in c]
# It was running: the question becomes "being cancelled" (or "cancelled"), never "running".
texts = [e["params"]["text"] for e in edits]
assert any(job in t and ("is being cancelled" in t or "is cancelled" in t) for t in texts), texts
' "$msg_id" "$job" || fail "the confirmation was not turned into the outcome"
pass "/cancel asks with inline buttons; the button cancels the job"

mark
# A destructive step: the PO asks first, with the answers as buttons, and
# acts only on the pick (which reaches it as Ann's next message).
curl -s -H "authorization: Bearer $ann_token" -H 'content-type: application/json' \
  -d '{"name":"doomed"}' "$gateway_url/v1/projects" | grep -q '"name": *"doomed"' ||
  fatal "could not create project doomed"
say 4242 "please delete project doomed" >/dev/null
wait_sent 60 "the question" sendMessage 4242 "say:Yes, delete doomed"
curl -s -H "authorization: Bearer $ann_token" "$gateway_url/v1/projects" | grep -q '"doomed"' ||
  fail "the project went before Ann said yes"
msg_id="$(curl -s "$tg/control/calls?method=sendMessage&chat_id=4242" | /usr/bin/python3 -c '
import json, sys
for c in reversed(json.load(sys.stdin)["calls"]):
    rows = (c["params"].get("reply_markup") or {}).get("inline_keyboard") or []
    labels = [b.get("text") for row in rows for b in row]
    if labels == ["Yes, delete doomed", "No, keep doomed"] and "result" in c:
        print(c["result"]["message_id"])
        break')"
[ -n "$msg_id" ] || fatal "no question with the buttons 'Yes, delete doomed' and 'No, keep doomed'"
curl -s -d "{\"from_id\":4242,\"data\":\"say:Yes, delete doomed\",\"message_id\":$msg_id}" \
  "$tg/control/callback" >/dev/null
wait_sent 60 "the deletion" sendMessage 4242 "Deleted project doomed"
curl -s -H "authorization: Bearer $ann_token" "$gateway_url/v1/projects" | grep -q '"doomed"' &&
  fail "project doomed is still there after the yes"
curl -s "$tg/control/calls?method=editMessageText&chat_id=4242" | /usr/bin/python3 -c '
import json, sys
msg = int(sys.argv[1])
edits = [c["params"] for c in json.load(sys.stdin)["calls"] if c["params"].get("message_id") == msg]
assert any(e["text"].endswith("\u2192 Yes, delete doomed") and not e.get("reply_markup")
           for e in edits), edits
' "$msg_id" || fail "the question did not show the pick (its buttons gone)"
pass "a destructive step is asked with inline buttons and done only on the yes"

mark
curl -s -d '{"method":"sendMessage","count":1,"retry_after":1}' "$tg/control/rate_limit" >/dev/null
helps() { sent sendMessage 4242 | grep -c '/cancel \[job id\]' || true; }
before="$(helps)"
say 4242 /help >/dev/null
deadline=$((SECONDS + 20))
until [ "$(helps)" -gt "$before" ] || ((SECONDS > deadline)); do sleep 0.2; done
[ "$(helps)" = $((before + 1)) ] || fail "the 429'd message was sent $(($(helps) - before)) times, not once"
curl -s "$tg/control/calls?method=sendMessage&chat_id=4242" | grep -q '"rejected": true' || fail "the fake never answered 429"
pass "a 429 is waited out for its retry_after"

mark
# SIGKILL while the agent works: after the restart the reply arrives, once.
say 4242 "please wait 3 seconds" >/dev/null
wait_sent 30 "typing before the kill" sendChatAction 4242 typing
sleep 0.5
kill -KILL "$gateway_pid"
wait "$gateway_pid" 2>/dev/null || true
gateway_pid=""
start_gateway "$gateway" "127.0.0.1:$port" "${telegram_flags[@]}"
wait_sent 40 "the reply of a turn cut by SIGKILL" sendMessage 4242 "Waited 3 seconds."
sleep 2
[ "$(sent sendMessage 4242 | grep -c 'Waited 3 seconds.' || true)" = 1 ] ||
  fail "the reply after SIGKILL arrived $(sent sendMessage 4242 | grep -c 'Waited 3 seconds.') times"
pass "a gateway killed mid-turn loses nothing: the reply arrives once after the restart"

mark
# The mesh's stream of a turn breaks (UNAVAILABLE) after the agent said
# something: the bridge's retry attaches to the same turn and hears its
# replies from the start again; each still reaches the chat once.
stop_gateway
/usr/bin/python3 -c '
import asyncio, signal, sys
upstream_port = int(sys.argv[1])
conns = set()
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()
async def handle(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        writer.close()
        return
    conns.update({writer, up_writer})
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    conns.difference_update({writer, up_writer})
def cut():  # SIGUSR1: every connection through the proxy breaks
    for w in list(conns):
        w.transport.abort()
    conns.clear()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, cut)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())' "$port" >"$work/proxy.port" 2>"$work/proxy.err" &
proxy_pid=$!
for _ in $(seq 50); do [ -s "$work/proxy.port" ] && break; sleep 0.1; done
start_gateway "$gateway" "127.0.0.1:$(cat "$work/proxy.port")" "${telegram_flags[@]}"
cut_streams() { grep -c 'rpc=SendMessage.*code=CANCELLED' "$log_file" || true; }
cut_before="$(cut_streams)"
say 4242 'run: orchestrator respond "Part one of the broken turn." >/dev/null && sleep 4 && echo broken turn done' >/dev/null
sleep 1.5 # the agent has responded, and sleeps
kill -USR1 "$proxy_pid"
wait_sent 40 "the broken turn's end" sendMessage 4242 "broken turn done"
sleep 1
(($(cut_streams) > cut_before)) || fail "the turn's stream was not broken: nothing was retried"
parts="$(sent sendMessage 4242 | grep -c 'Part one of the broken turn.' || true)"
[ "$parts" = 1 ] || fail "a reply heard again by the retry was sent $parts times, not once"
stop_gateway
kill "$proxy_pid" 2>/dev/null || true
wait "$proxy_pid" 2>/dev/null || true
start_gateway "$gateway" "127.0.0.1:$port" "${telegram_flags[@]}"
pass "a turn's stream broken and retried: each reply reaches the chat once"

mark
helps_before="$(helps)"
stop_gateway
[ "$gateway_status" = 0 ] || fail "gateway exit status $gateway_status"
# Written while the gateway is down: handled once after the restart.
polls_before="$(curl -s "$tg/control/polls" | /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["polls"]))')"
down_id="$(say 4242 /help)"
start_gateway "$gateway" "127.0.0.1:$port" "${telegram_flags[@]}"
deadline=$((SECONDS + 20))
until [ "$(helps)" -ge $((helps_before + 1)) ]; do
  ((SECONDS < deadline)) || {
    fail "the message sent during the restart was lost"
    break
  }
  sleep 0.2
done
sleep 2
helps_after="$(helps)"
[ "$helps_after" = $((helps_before + 1)) ] || fail "after the restart /help was answered $((helps_after - helps_before)) times"
curl -s "$tg/control/polls" | /usr/bin/python3 -c '
import json, sys
polls = json.load(sys.stdin)["polls"][int(sys.argv[1]):]
down = int(sys.argv[2])
# The restarted poller asks from its saved offset: exactly the first update
# it had not handled, never one it had (which Telegram would send again).
assert polls and polls[0]["offset"] == down, "first poll after the restart: %s, want offset %d" % (polls[:1], down)
assert all(p["offset"] >= down for p in polls), [p["offset"] for p in polls]
' "$polls_before" "$down_id" || fail "the restarted poller did not resume at its saved offset"
pass "the long-polling offset survives a restart: nothing lost, nothing repeated"

mark
stop_gateway
echo "webhook-secret-$RANDOM" >"$work/webhook.secret"
start_gateway "$gateway" "127.0.0.1:$port" --telegram_mode=webhook --telegram_api_base="$tg" \
  --telegram_token_file="$work/bot.token" --telegram_users="$work/telegram.users" \
  --telegram_state="$work/telegram.state" --telegram_webhook_secret_file="$work/webhook.secret"
update='{"update_id":990001,"message":{"message_id":1,"date":1,"chat":{"id":4242,"type":"private"},"from":{"id":4242,"is_bot":false,"first_name":"Ann"},"text":"/help"}}'
code="$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Telegram-Bot-Api-Secret-Token: forged' -d "$update" "$gateway_url/telegram/webhook")"
[ "$code" = 401 ] || fail "a forged webhook secret got $code"
code="$(curl -s -o /dev/null -w '%{http_code}' -d "$update" "$gateway_url/telegram/webhook")"
[ "$code" = 401 ] || fail "a webhook without a secret got $code"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Telegram-Bot-Api-Secret-Token: $(cat "$work/webhook.secret")" -d '{"update_id":"x"' "$gateway_url/telegram/webhook")"
[ "$code" = 400 ] || fail "a malformed update got $code"
before="$(helps)"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Telegram-Bot-Api-Secret-Token: $(cat "$work/webhook.secret")" -d "$update" "$gateway_url/telegram/webhook")"
[ "$code" = 200 ] || fail "a genuine webhook update got $code"
# Answered only once handled, so the reply is already out.
[ "$(helps)" = $((before + 1)) ] || fail "the webhook's /help was answered $(($(helps) - before)) times, not once"
pass "the webhook takes updates with the secret and refuses forged ones"

finish "Telegram bridge"
