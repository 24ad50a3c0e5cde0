-- wrk script for benchmarks/bot_server.py: every request is a fresh, correctly
-- signed WeChat text message (own nonce, current timestamp, own MsgId), so the
-- server under test does its full work: signature, replay and dedup checks,
-- session, log. Usage (the Python driver builds this command line):
--
--   wrk -t2 -c32 -d10s -s bot_wrk.lua URL -- TOKEN MODE USERS TEXT [TEXT2]
--
-- MODE "cycle": TEXT... are sent in turn. MODE "unique": the same, each with
-- the request's own number appended, so no two messages are alike (nothing a
-- cache could serve). MODE "flow": each user sends TEXT first (a flow trigger)
-- and TEXT2 (an option) from then on.

local bit = require("bit")
local band, bor, bxor, bnot, rol, tobit, tohex = bit.band, bit.bor, bit.bxor, bit.bnot, bit.rol, bit.tobit, bit.tohex
local byte, char, rep, format = string.byte, string.char, string.rep, string.format

-- SHA-1 (FIPS 180-4), enough for short ASCII inputs.
local function sha1(msg)
  local h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
  local bits = #msg * 8
  msg = msg .. "\128" .. rep("\0", (55 - #msg) % 64)
    .. char(0, 0, 0, 0, band(bit.rshift(bits, 24), 255), band(bit.rshift(bits, 16), 255),
            band(bit.rshift(bits, 8), 255), band(bits, 255))
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      local a, b, c, d = byte(msg, chunk + i * 4, chunk + i * 4 + 3)
      w[i] = bor(bit.lshift(a, 24), bit.lshift(b, 16), bit.lshift(c, 8), d)
    end
    for i = 16, 79 do
      w[i] = rol(bxor(w[i - 3], w[i - 8], w[i - 14], w[i - 16]), 1)
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then f, k = bor(band(b, c), band(bnot(b), d)), 0x5A827999
      elseif i < 40 then f, k = bxor(b, c, d), 0x6ED9EBA1
      elseif i < 60 then f, k = bor(band(b, c), band(b, d), band(c, d)), 0x8F1BBCDC
      else f, k = bxor(b, c, d), 0xCA62C1D6 end
      local t = tobit(rol(a, 5) + f + e + k + w[i])
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    h0, h1, h2, h3, h4 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d), tobit(h4 + e)
  end
  return tohex(h0) .. tohex(h1) .. tohex(h2) .. tohex(h3) .. tohex(h4)
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local token, mode, users, texts, path
local sent, seen = 0, {}
local tid, run

function init(args)
  token = args[1] or "bench-token"
  mode = args[2] or "cycle"
  users = tonumber(args[3] or "1000")
  texts = {}
  for i = 4, #args do table.insert(texts, args[i]) end
  tid = wrk.thread:get("tid") or 1
  path = wrk.path
  math.randomseed(os.time() + tid * 7919)
  run = math.random(1, 999999999)
end

local function cdata(s)
  return "<![CDATA[" .. s .. "]]>"
end

function request()
  sent = sent + 1
  local user = format("bench-%d-%d", tid, sent % users)
  local text
  if mode == "flow" then
    if seen[user] then text = texts[2] else text = texts[1]; seen[user] = true end
  elseif mode == "unique" then
    text = texts[(sent - 1) % #texts + 1] .. format("，第%d-%d-%d次", run, tid, sent)
  else
    text = texts[(sent - 1) % #texts + 1]
  end
  local ts = tostring(os.time())
  local nonce = format("%d%09d%06d", tid, sent, math.random(0, 999999))
  local parts = { token, ts, nonce }
  table.sort(parts)
  local signature = sha1(table.concat(parts))
  local body = "<xml><ToUserName>" .. cdata("gh_bench") .. "</ToUserName><FromUserName>" .. cdata(user)
    .. "</FromUserName><CreateTime>" .. ts .. "</CreateTime><MsgType>" .. cdata("text")
    .. "</MsgType><Content>" .. cdata(text) .. "</Content><MsgId>" .. format("%d%012d", tid, sent)
    .. "</MsgId></xml>"
  local url = path .. "?signature=" .. signature .. "&timestamp=" .. ts .. "&nonce=" .. nonce
  return wrk.format("POST", url, { ["Content-Type"] = "text/xml" }, body)
end

local bad = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, "<xml>", 1, true) then
    bad = bad + 1
    if bad <= 3 then io.stderr:write(format("unexpected reply %d: %s\n", status, string.sub(body, 1, 200))) end
  end
end
