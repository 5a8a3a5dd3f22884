#!/usr/bin/python3
"""A TikTok v2 API sandbox for ngx_http_tiktok_module's tests, demo and bench.

It follows /work/shared/TIKTOK_API.md (in the repository's history: the
facts the module is built against), including TikTok's awkward parts: hex
PKCE challenges, flat OAuth answers and OAuth errors with HTTP 200, rotating
refresh tokens, 19-digit ids above 2^53, millisecond cursors, expiring cover
URLs, "can't post now" with HTTP 200, strict chunk rules for uploads.

One process, one asyncio loop, standard library only.  Two listeners:

  * the API (HTTPS, --port): www.tiktok.com's authorize page,
    open.tiktokapis.com's /v2/... endpoints, the upload host (/upload/), a
    tiny CDN (/cdn/) for cover and avatar images and a sink (/sink/) that
    takes any PUT and hashes it, the baseline of the bench's upload;
  * the control API (plain HTTP on 127.0.0.1, --control-port) through which
    tests script users, authorizations, tokens, faults and read what the
    sandbox received.  See Control below for the exact shapes.

Run:
  tiktok_sandbox.py --listen 127.0.0.1 --port 0 --control-port 0 \
      --cert server.pem --key server.key --client-key KEY \
      --client-secret SECRET --redirect-uri URI [--redirect-uri URI2 ...] \
      [--ready-file PATH] [--log PATH] [--parent-pid PID] [--demo]

--demo is for a person in a browser (make demo): the authorize page is a
consent page with Authorize and Cancel buttons instead of a scripted user
who decides at once, and the sandbox starts with DEMO_USER, a creator with
videos, instead of DEFAULT_USER.
"""

import argparse
import asyncio
import collections
import copy
import email.utils
import hashlib
import hmac
import html
import http
import ipaddress
import itertools
import json
import math
import os
import re
import resource
import secrets
import signal
import socket
import ssl
import string
import struct
import sys
import time
import traceback
import urllib.parse
import zlib


# --- TikTok's facts (TIKTOK_API.md) ------------------------------------------

SCOPES = ("user.info.basic", "user.info.profile", "user.info.stats",
          "video.list", "video.publish", "video.upload")

# /v2/user/info/ fields and the scope each needs.
USER_FIELD_SCOPE = {
    "open_id": "user.info.basic",
    "union_id": "user.info.basic",
    "avatar_url": "user.info.basic",
    "avatar_url_100": "user.info.basic",
    "avatar_large_url": "user.info.basic",
    "display_name": "user.info.basic",
    "username": "user.info.profile",
    "bio_description": "user.info.profile",
    "profile_deep_link": "user.info.profile",
    "is_verified": "user.info.profile",
    "follower_count": "user.info.stats",
    "following_count": "user.info.stats",
    "likes_count": "user.info.stats",
    "video_count": "user.info.stats",
}

VIDEO_FIELDS = ("id", "create_time", "cover_image_url", "share_url",
                "video_description", "duration", "height", "width", "title",
                "embed_html", "embed_link", "like_count", "comment_count",
                "share_count", "view_count")

# error.code -> HTTP status, as documented.
ERROR_STATUS = {
    "ok": 200,
    "access_token_invalid": 401,
    "scope_not_authorized": 401,
    "scope_permission_missed": 400,
    "invalid_params": 400,
    "invalid_param": 400,
    "rate_limit_exceeded": 429,
    "internal_error": 500,
    "spam_risk_too_many_posts": 403,
    "spam_risk_too_many_pending_share": 403,
    "spam_risk_user_banned_from_posting": 403,
    "reached_active_user_cap": 403,
    "unaudited_client_can_only_post_to_private_accounts": 403,
    "url_ownership_unverified": 403,
    "privacy_level_option_mismatch": 403,
    "invalid_publish_id": 400,
    "token_not_authorized_for_specified_publish_id": 400,
    "not_found": 404,
    "method_not_allowed": 405,
}

# What creator_info may say about a creator who cannot post now.
CAN_POST_VALUES = ("ok", "spam_risk_too_many_posts",
                   "spam_risk_user_banned_from_posting",
                   "reached_active_user_cap",
                   "unaudited_client_can_only_post_to_private_accounts")

FAIL_REASONS = ("internal", "video_pull_failed", "photo_pull_failed",
                "file_format_check_failed",
                "duration_check_failed", "frame_rate_check_failed",
                "picture_size_check_failed", "publish_cancelled",
                "auth_removed", "spam_risk_too_many_posts",
                "spam_risk_user_banned_from_posting",
                "spam_risk_text", "spam_risk")

PUBLIC_OPTIONS = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
PRIVATE_OPTIONS = ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]

# Chunk rules.  "MB" is ambiguous in TikTok's pages; these stay inside both
# readings (TIKTOK_API.md).  The 4 GB cap is read the same strict way.
MIN_CHUNK = 5_242_880
MAX_CHUNK = 64_000_000
MAX_SINGLE_CHUNK = 64_000_000
MAX_CHUNKS = 1000
MAX_VIDEO_BYTES = 4_000_000_000
MAX_TITLE_UTF16 = 2200
UPLOAD_TYPES = ("video/mp4", "video/quicktime", "video/webm")
MAX_PUBLISH_ID = 64

# Photo posts (the content init) and the inbox (drafts).
MAX_PHOTOS = 35
MAX_PHOTO_TITLE_UTF16 = 90
MAX_DESCRIPTION_UTF16 = 4000
PHOTO_POST_INFO = {"title": str, "description": str, "privacy_level": str,
                   "disable_comment": bool, "auto_add_music": bool,
                   "brand_content_toggle": bool,
                   "brand_organic_toggle": bool}
PHOTO_POST_MODES = {"DIRECT_POST": "video.publish",
                    "MEDIA_UPLOAD": "video.upload"}

VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
CHALLENGE_RE = re.compile(r"[0-9a-f]{64}")
CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")

# Rate limits: a sliding one-minute window, keyed per client (the app) for
# the Display API and per user access token for posting.
DEFAULT_RATE_LIMITS = {
    "/v2/user/info/": 600,
    "/v2/video/list/": 600,
    "/v2/video/query/": 600,
    "/v2/post/publish/video/init/": 6,
    "/v2/post/publish/inbox/video/init/": 6,
    "/v2/post/publish/content/init/": 6,
    "/v2/post/publish/creator_info/query/": 20,
    "/v2/post/publish/status/fetch/": 30,
}
PER_TOKEN_LIMITS = ("/v2/post/publish/video/init/",
                    "/v2/post/publish/inbox/video/init/",
                    "/v2/post/publish/content/init/",
                    "/v2/post/publish/creator_info/query/",
                    "/v2/post/publish/status/fetch/")
RATE_WINDOW = 60.0
DAY = 86400

DEFAULT_CONFIG = {
    "access_expires_in": 7200,
    "refresh_expires_in": 15552000,
    "code_ttl": 600,
    "oauth_error_status": 200,       # quirk: OAuth errors come with 200
    "status_polls_to_complete": 2,
    "verified_prefixes": ["https://media.example.com/"],
    "upload_url_ttl": 3600,
    "cover_url_ttl": 21600,          # cover_image_url expires after 6 h
    "daily_post_cap": 15,
    "pending_share_cap": 5,          # inbox shares pending per 24 h
    "unaudited": False,
    "check_media_format": True,
    "pull_video_size": 10_485_760,   # what a PULL_FROM_URL "downloads"
    "rate_limits": dict(DEFAULT_RATE_LIMITS),
}

DEFAULT_OPEN_ID = "723f24d7-e717-40f8-a2b6-cb8464cd23b4"
DEFAULT_USER = {
    "open_id": DEFAULT_OPEN_ID,
    "union_id": "c9c60f44-a68e-4f5d-84dd-ce22faeb0ba1",
    "display_name": "Sandbox Creator",
    "username": "sandbox.creator",
    "bio_description": "Videos from the TikTok sandbox \u2728",
    "is_verified": False,
    "follower_count": 5_000_000_123,
    "following_count": 321,
    "likes_count": 4_294_967_297,
    "video_count": 25,
}

# The creator a person meets in the demo: same open_id as DEFAULT_USER (so
# control scripts still name it), videos a person can tell apart, and duets
# switched off, so the export form has an interaction to grey out.
DEMO_VIDEOS = (
    ("Sourdough in 60 seconds", 184_302, 12_877, 341, 96),
    ("Five-minute focaccia", 92_118, 7_450, 128, 41),
    ("Why my croissants failed", 1_250_407, 88_213, 2_904, 1_377),
    ("Cinnamon rolls, no mixer", 46_990, 3_102, 77, 12),
    ("Proofing basket hacks", 23_561, 1_845, 39, 8),
    ("Laminating dough, slowly", 310_774, 25_006, 611, 203),
)
DEMO_USER = {
    "open_id": DEFAULT_OPEN_ID,
    "union_id": DEFAULT_USER["union_id"],
    "display_name": "Juniper Bakes",
    "username": "juniper.bakes",
    "bio_description": "Bread, slowly 🍞",
    "follower_count": 48_211,
    "following_count": 180,
    "likes_count": 139_593,
    "duet_disabled": True,
    "videos": [
        {"title": t, "video_description": t + " #baking",
         "view_count": v, "like_count": l, "comment_count": c,
         "share_count": sh, "duration": 30 + 7 * i}
        for i, (t, v, l, c, sh) in enumerate(DEMO_VIDEOS)],
}

FIRST_VIDEO_ID = 7300000000000000001
FIRST_UPLOAD_ID = 7310000000000000001
FIRST_PUBLISH_ID = 7320000000000000001

MAX_API_BODY = 1 << 20        # JSON and form bodies; uploads are streamed
MAX_CONTROL_BODY = 16 << 20
MAX_HEAD = 64 << 10
READ_PIECE = 1 << 20
IDLE_TIMEOUT = 300            # longer than nginx's upstream keepalive_timeout
KEEP_REQUESTS = 200           # per endpoint, for GET /requests


# --- small helpers -----------------------------------------------------------

ALNUM = string.ascii_letters + string.digits


def rand_str(n, alphabet=ALNUM):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def new_log_id():
    """TikTok's log ids: a UTC timestamp followed by random hex."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + \
        secrets.token_hex(10).upper()


def redact(value, keep=6):
    """Enough of a secret to correlate log lines, never the whole of it."""
    if value is None:
        return "-"
    return value if len(value) <= keep else value[:keep] + "\u2026"


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def utf16_len(s):
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def media_type(value):
    """'Application/JSON; charset=utf-8' -> ('application/json',
    {'charset': 'utf-8'})."""
    if not value:
        return "", {}
    parts = value.split(";")
    params = {}
    for p in parts[1:]:
        k, _, v = p.strip().partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].strip().lower(), params


def json_bytes(obj):
    # ensure_ascii=False: TikTok answers in UTF-8, emoji and all; Python's
    # ints are exact, so ids above 2^53 go out digit for digit.
    return json.dumps(obj, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def _reject_constant(name):
    raise ValueError("not JSON: " + name)


def parse_json(raw):
    """Strict JSON (no NaN/Infinity) from UTF-8 bytes; ValueError if not."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


def single_params(pairs):
    """Query or form pairs -> dict; None when a name repeats (ambiguous)."""
    out = {}
    for k, v in pairs:
        if k in out:
            return None
        out[k] = v
    return out


def png_bytes(width, height, rgb):
    """A PNG shading from rgb at the top to a darker rgb at the bottom, so
    covers and avatars are real images a person can tell apart."""
    raw = b""
    for y in range(height):
        shade = bytes(c * (height * 2 - y) // (height * 2) for c in rgb)
        raw += b"\x00" + shade * width

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data +
                struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff))

    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                       0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def looks_like_video(head):
    """MP4/MOV have 'ftyp' at offset 4; WebM starts with the EBML magic."""
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3"


# --- HTTP/1.1 server ---------------------------------------------------------

class HttpError(Exception):
    """A protocol-level problem: answer with this status and close."""

    def __init__(self, status, message=""):
        super().__init__(message)
        self.status = status
        self.message = message


class Response:
    def __init__(self, status, body=b"", content_type=None, headers=(),
                 close=False):
        self.status = status
        self.body = body
        self.headers = list(headers)
        if content_type:
            self.headers.insert(0, ("Content-Type", content_type))
        self.close = close
        self.truncate = False   # send half the body, then close


DROP = object()     # "close the connection without answering"

JSON_TYPE = "application/json; charset=UTF-8"


def json_response(status, obj, headers=()):
    return Response(status, json_bytes(obj), JSON_TYPE, headers)


class BodyStream:
    """The request body, read on demand: by Content-Length or chunked.

    Handlers either read it all (read_all), stream it (pieces), or discard
    it.  A body left unread means the connection cannot be reused."""

    def __init__(self, conn, length, chunked, expect_continue):
        self.conn = conn
        self.length = length
        self.chunked = chunked
        self.expect_continue = expect_continue
        self.continued = False
        self.remaining = length
        self.received = 0
        self.done = not chunked and length == 0

    @property
    def awaiting_continue(self):
        """The client waits for '100 Continue' before sending the body."""
        return self.expect_continue and not self.continued and not self.done

    async def _send_continue(self):
        if self.expect_continue and not self.continued:
            self.continued = True
            self.conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await self.conn.writer.drain()

    async def _read_exact_pieces(self, n):
        reader = self.conn.reader
        while n:
            data = await reader.read(min(n, READ_PIECE))
            if not data:
                raise ConnectionResetError("request body truncated")
            n -= len(data)
            self.received += len(data)
            yield data

    async def pieces(self):
        if self.done:
            return
        await self._send_continue()
        if not self.chunked:
            async for data in self._read_exact_pieces(self.remaining):
                self.remaining -= len(data)
                yield data
            self.done = True
            return
        reader = self.conn.reader
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                raise ConnectionResetError("request body truncated")
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,15}", size_text):
                raise HttpError(400, "bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            async for data in self._read_exact_pieces(size):
                yield data
            if await reader.readexactly(2) != b"\r\n":
                raise HttpError(400, "bad chunk terminator")
        while True:                         # trailer fields, ignored
            line = await reader.readline()
            if not line:
                raise ConnectionResetError("request body truncated")
            if line in (b"\r\n", b"\n"):
                break
        self.done = True

    async def read_all(self, limit):
        if self.length > limit:
            raise HttpError(413, "request body too large")
        parts, size = [], 0
        async for data in self.pieces():
            size += len(data)
            if size > limit:
                raise HttpError(413, "request body too large")
            parts.append(data)
        return b"".join(parts)

    async def discard(self):
        async for _ in self.pieces():
            pass


class Request:
    def __init__(self, conn, method, target, version, headers):
        self.conn = conn
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers                      # [(name, value)]
        self.h = {}                                 # lower name -> value
        for name, value in headers:
            key = name.lower()
            self.h[key] = self.h[key] + ", " + value if key in self.h \
                else value
        path, _, self.query_string = target.partition("?")
        self.path = urllib.parse.unquote(path)
        self.query_pairs = urllib.parse.parse_qsl(self.query_string,
                                                  keep_blank_values=True)
        self.body = None                            # BodyStream
        self.body_bytes = b""
        self.log_id = new_log_id()
        self.started = time.monotonic()

    def header(self, name, default=None):
        return self.h.get(name.lower(), default)

    def query_first(self, name):
        for k, v in self.query_pairs:
            if k == name:
                return v
        return None

    def keep_alive_requested(self):
        tokens = {t.strip().lower()
                  for t in self.header("connection", "").split(",")}
        if self.version >= (1, 1):
            return "close" not in tokens
        return "keep-alive" in tokens


TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
REQUEST_LINE_RE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) "
                             r"HTTP/(\d)\.(\d)")


class Connection:
    ids = itertools.count(1)

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.id = next(Connection.ids)
        peer = writer.get_extra_info("peername")
        self.peer = peer[0] if peer else "-"

    def ack_now(self):
        """Acknowledge what we have read at once.  Clients that write the
        head and the body separately (HTTP::Tiny, curl) otherwise hold the
        body back (Nagle) until our delayed ACK fires, 40 ms later."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None and hasattr(socket, "TCP_QUICKACK"):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass


def parse_head(conn, raw):
    lines = raw.decode("latin-1").split("\r\n")
    m = REQUEST_LINE_RE.fullmatch(lines[0])
    if not m:
        raise HttpError(400, "bad request line")
    version = (int(m.group(3)), int(m.group(4)))
    if version[0] != 1:
        raise HttpError(505, "HTTP/1.x only")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise HttpError(400, "obsolete line folding")
        name, sep, value = line.partition(":")
        if not sep or not TOKEN_RE.fullmatch(name):
            raise HttpError(400, "bad header line")
        headers.append((name, value.strip(" \t")))
    req = Request(conn, m.group(1), m.group(2), version, headers)
    if version >= (1, 1) and req.header("host") is None:
        raise HttpError(400, "Host header required")
    req.body = body_stream(conn, req)
    if not req.body.done:
        conn.ack_now()
    return req


def body_stream(conn, req):
    """Message framing (RFC 9112 section 6)."""
    expect = req.header("expect", "").lower() == "100-continue"
    te = req.header("transfer-encoding")
    if te is not None:
        codings = [c.strip().lower() for c in te.split(",")]
        if req.version < (1, 1):
            raise HttpError(400, "Transfer-Encoding in HTTP/1.0")
        if codings != ["chunked"]:
            raise HttpError(501, "only chunked transfer-coding is supported")
        return BodyStream(conn, 0, True, expect)
    lengths = {v.strip() for k, v in req.headers
               if k.lower() == "content-length"}
    if not lengths:
        return BodyStream(conn, 0, False, expect)
    values = {x.strip() for v in lengths for x in v.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise HttpError(400, "bad Content-Length")
    return BodyStream(conn, int(next(iter(values))), False, expect)


class HttpServer:
    """Connection loop: keep-alive, pipelining in order, framing.  The app's
    `handle(request)` returns a Response or DROP."""

    def __init__(self, app):
        self.app = app
        self.writers = set()

    async def serve(self, reader, writer):
        conn = Connection(reader, writer)
        self.writers.add(writer)
        try:
            while await self._one_exchange(conn):
                pass
        except (ConnectionError, asyncio.IncompleteReadError,
                asyncio.TimeoutError, ssl.SSLError, OSError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _one_exchange(self, conn):
        try:
            raw = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"),
                                         IDLE_TIMEOUT)
        except asyncio.IncompleteReadError:
            return False                    # the client closed: fine
        except asyncio.LimitOverrunError:
            await self._write(conn, None, Response(
                431, b"header too large\n", "text/plain"), False)
            return False
        raw = raw.lstrip(b"\r\n")           # stray CRLF between messages
        try:
            req = parse_head(conn, raw)
        except HttpError as e:
            await self._write(conn, None, Response(
                e.status, (e.message + "\n").encode(), "text/plain"), False)
            return False
        resp = await self.app.handle(req)
        if resp is DROP:
            return False
        keep = req.keep_alive_requested() and not resp.close
        if not req.body.done:
            keep = False                    # unread body: cannot reuse
        await self._write(conn, req, resp, keep)
        return keep

    async def _write(self, conn, req, resp, keep):
        try:
            reason = http.HTTPStatus(resp.status).phrase
        except ValueError:
            reason = "Status"
        lines = ["HTTP/1.1 %d %s" % (resp.status, reason),
                 "Date: " + email.utils.formatdate(usegmt=True),
                 "Server: tiktok-sandbox"]
        lines += ["%s: %s" % (k, v) for k, v in resp.headers]
        lines.append("Content-Length: %d" % len(resp.body))
        if not keep:
            lines.append("Connection: close")
        elif req is not None and req.version < (1, 1):
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if resp.truncate:
            conn.writer.write(head + resp.body[:len(resp.body) // 2])
            await conn.writer.drain()
            raise ConnectionResetError("truncated on purpose")
        conn.writer.write(head + resp.body)
        await conn.writer.drain()

    def close_all(self):
        for w in list(self.writers):
            w.close()


# --- errors the API answers with ---------------------------------------------

class ApiError(Exception):
    """An envelope error: {"data":{},"error":{"code","message","log_id"}}."""

    def __init__(self, code, message, status=None, headers=()):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None \
            else ERROR_STATUS.get(code, 400)
        self.headers = list(headers)


class OAuthError(Exception):
    """A flat OAuth error: {"error","error_description","log_id"}."""

    def __init__(self, error, description):
        super().__init__(description)
        self.error = error
        self.description = description


class PageError(Exception):
    """The authorize page's error: an HTML page, no redirect."""

    def __init__(self, error, description):
        super().__init__(description)
        self.error = error
        self.description = description


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def invalid_param(message):
    """Posting endpoints spell it `invalid_param` (quirk: both spellings
    occur; the Display API says `invalid_params`)."""
    return ApiError("invalid_param", message)


def invalid_params(message):
    return ApiError("invalid_params", message)


# --- state -------------------------------------------------------------------

class Video:
    def __init__(self, vid, create_ms, title, description="", duration=15,
                 height=1920, width=1080, like_count=0, comment_count=0,
                 share_count=0, view_count=0, public=True):
        self.id = vid
        self.create_ms = create_ms
        self.title = title
        self.description = description
        self.duration = duration
        self.height = height
        self.width = width
        self.like_count = like_count
        self.comment_count = comment_count
        self.share_count = share_count
        self.view_count = view_count
        self.public = public

    def to_json(self):
        return {"id": self.id, "create_time": self.create_ms // 1000,
                "create_time_ms": self.create_ms, "title": self.title,
                "video_description": self.description,
                "duration": self.duration, "height": self.height,
                "width": self.width, "like_count": self.like_count,
                "comment_count": self.comment_count,
                "share_count": self.share_count,
                "view_count": self.view_count, "public": self.public}


class User:
    FIELDS = {          # name -> (default, validator)
        "union_id": ("", str),
        "display_name": ("Sandbox User", str),
        "avatar_url": (None, str),
        "username": (None, str),
        "bio_description": ("", str),
        "profile_deep_link": (None, str),
        "is_verified": (False, bool),
        "follower_count": (0, int),
        "following_count": (0, int),
        "likes_count": (0, int),
        "private": (False, bool),
        "comment_disabled": (False, bool),
        "duet_disabled": (False, bool),
        "stitch_disabled": (False, bool),
        "max_video_post_duration_sec": (600, int),
        "can_post": ("ok", str),
    }

    def __init__(self, open_id):
        self.open_id = open_id
        for name, (default, _) in self.FIELDS.items():
            setattr(self, name, default)
        self.videos = []            # newest first
        self.taken_ms = set()

    def add_video(self, video):
        """Creation times are kept distinct within the user's list, so the
        millisecond cursor never skips or repeats a video."""
        while video.create_ms in self.taken_ms:
            video.create_ms += 1
        self.taken_ms.add(video.create_ms)
        self.videos.append(video)
        self.videos.sort(key=lambda v: v.create_ms, reverse=True)

    def public_videos(self):
        return [v for v in self.videos if v.public]

    def to_json(self):
        out = {"open_id": self.open_id}
        for name in self.FIELDS:
            out[name] = getattr(self, name)
        out["videos"] = [v.to_json() for v in self.videos]
        return out


class Grant:
    """One authorization of the app by a user: its scopes and its current
    refresh token (refresh tokens rotate)."""

    def __init__(self, open_id, client_key, scopes):
        self.open_id = open_id
        self.client_key = client_key
        self.scopes = scopes
        self.refresh_token = None
        self.refresh_expires_at = 0.0
        self.revoked = False


class AccessToken:
    def __init__(self, token, grant, expires_at):
        self.token = token
        self.grant = grant
        self.expires_at = expires_at

    @property
    def open_id(self):
        return self.grant.open_id

    @property
    def scopes(self):
        return self.grant.scopes

    def valid(self, now):
        return not self.grant.revoked and now < self.expires_at


class AuthCode:
    def __init__(self, client_key, redirect_uri, scopes, open_id, challenge,
                 expires_at):
        self.client_key = client_key
        self.redirect_uri = redirect_uri
        self.scopes = scopes
        self.open_id = open_id
        self.challenge = challenge
        self.expires_at = expires_at


class Upload:
    """A FILE_UPLOAD task.  Only what verification needs is kept: the
    ranges seen, the byte count, a running SHA-256 and the first bytes."""

    HEAD_BYTES = 64

    def __init__(self, upload_id, token, publish_id, video_size, chunk_size,
                 total_chunk_count, expires_at):
        self.upload_id = upload_id
        self.token = token
        self.publish_id = publish_id
        self.video_size = video_size
        self.chunk_size = chunk_size
        self.total_chunk_count = total_chunk_count
        self.expires_at = expires_at
        self.ranges = []
        self.bytes_received = 0
        self.chunks_received = 0
        self.sha = hashlib.sha256()
        self.head = b""
        self.content_types = []
        self.lock = asyncio.Lock()

    @property
    def complete(self):
        return self.chunks_received == self.total_chunk_count

    def expected_chunk_size(self, index):
        """Every chunk is chunk_size except the last, which takes the
        remainder (so it may be up to twice chunk_size)."""
        if index < self.total_chunk_count - 1:
            return self.chunk_size
        return self.video_size - self.chunk_size * (self.total_chunk_count - 1)

    def to_json(self):
        return {"publish_id": self.publish_id, "upload_id": self.upload_id,
                "video_size": self.video_size, "chunk_size": self.chunk_size,
                "total_chunk_count": self.total_chunk_count,
                "ranges": self.ranges, "bytes": self.bytes_received,
                "chunks": self.chunks_received, "complete": self.complete,
                "sha256": self.sha.hexdigest(),
                "content_types": self.content_types,
                "head_hex": self.head.hex(),
                "expires_at": int(self.expires_at)}


class Post:
    def __init__(self, publish_id, open_id, access_token, source, post_info,
                 source_info, inbox=False, media_type="VIDEO"):
        self.publish_id = publish_id
        self.inbox = inbox          # a share to the creator's inbox
        self.media_type = media_type
        self.open_id = open_id
        self.access_token = access_token
        self.source = source
        self.post_info = post_info
        self.source_info = source_info
        self.created = time.time()
        self.status = "PROCESSING_UPLOAD" if source == "FILE_UPLOAD" \
            else "PROCESSING_DOWNLOAD"
        self.ready_polls = 0        # polls since the media was all there
        self.polls = 0
        self.fail_reason = None     # scripted, applied when processing ends
        self.final_fail_reason = None
        self.post_id = None
        self.upload = None
        self.downloaded_bytes = 0

    @property
    def public(self):
        return self.post_info.get("privacy_level") == "PUBLIC_TO_EVERYONE"

    def to_json(self):
        return {"publish_id": self.publish_id, "open_id": self.open_id,
                "source": self.source, "status": self.status,
                "inbox": self.inbox, "media_type": self.media_type,
                "post_info": self.post_info, "source_info": self.source_info,
                "polls": self.polls, "ready_polls": self.ready_polls,
                "scripted_fail_reason": self.fail_reason,
                "fail_reason": self.final_fail_reason,
                "post_id": self.post_id, "created": int(self.created),
                "uploaded_bytes": self.upload.bytes_received
                if self.upload else None,
                "downloaded_bytes": self.downloaded_bytes
                if self.source == "PULL_FROM_URL" else None}


class Fault:
    """An injected failure.  By default it replaces the endpoint's work:
    TikTok did nothing.  With "after": true the endpoint does its work first
    (a publish is created, a chunk stored, a token rotated) and only the
    answer is lost or replaced: the "the other side acted but the answer was
    lost" case.  "truncate" sends the head and half of the body, then
    closes the connection.

    The hostile answers are well-formed HTTP with JSON a careless parser
    trips on; each is the endpoint's real answer (the work is done, as with
    "after"), reshaped:
      "huge"      every list in it grown to "elements" items (default
                  10000) by repeating its items, and a "padding" string of
                  "bytes" characters (default 0) added beside "data";
      "deep"      "data" replaced by "depth" nested arrays (default 10000);
      "confused"  every scalar under "data" (the whole answer for OAuth's
                  flat ones) swapped for one of another type; with "key",
                  only the values of the fields of that name, anywhere,
                  containers included (an object becomes a list)."""

    TYPES = ("delay", "status", "rate_limit", "malformed_json", "drop",
             "token_invalid", "error_code", "truncate")
    HOSTILE = ("huge", "deep", "confused")

    def __init__(self, spec):
        self.endpoint = spec.get("endpoint", "*")
        self.type = spec.get("type")
        self.ms = spec.get("ms", 1000)
        self.status = spec.get("status")
        self.retry_after = spec.get("retry_after", 60)
        self.code = spec.get("code", "internal_error")
        self.count = spec.get("count", 1)
        self.after = spec.get("after", False)
        self.elements = spec.get("elements", 10000)
        self.bytes = spec.get("bytes", 0)
        self.depth = spec.get("depth", 10000)
        self.key = spec.get("key")
        if self.type not in self.TYPES + self.HOSTILE:
            raise ControlError(400, "fault type must be one of "
                               + ", ".join(self.TYPES + self.HOSTILE))
        if not isinstance(self.endpoint, str) or \
                not (self.endpoint == "*" or self.endpoint.startswith("/")):
            raise ControlError(400, 'endpoint must be a path or "*"')
        for name in ("ms", "retry_after", "count", "elements", "bytes",
                     "depth"):
            v = getattr(self, name)
            if not is_int(v) or v < 0:
                raise ControlError(400, name + " must be an integer >= 0")
        if self.elements > 1_000_000 or self.bytes > 64 << 20 or \
                self.depth > 1_000_000:
            raise ControlError(400, "elements, bytes or depth too large")
        if self.key is not None and not isinstance(self.key, str):
            raise ControlError(400, "key must be a string")
        if self.status is not None and \
                not (is_int(self.status) and 100 <= self.status <= 599):
            raise ControlError(400, "status must be an HTTP status")
        if not isinstance(self.code, str):
            raise ControlError(400, "code must be a string")
        if not isinstance(self.after, bool):
            raise ControlError(400, "after must be true or false")
        if self.after and self.type == "delay":
            raise ControlError(400, "a delay cannot come after")
        if self.type in self.HOSTILE:
            self.after = True       # it reshapes the real answer
        self.used = 0

    def matches(self, endpoint):
        return self.endpoint in ("*", endpoint)

    def to_json(self):
        return {"endpoint": self.endpoint, "type": self.type, "ms": self.ms,
                "status": self.status, "retry_after": self.retry_after,
                "code": self.code, "count": self.count, "after": self.after,
                "elements": self.elements, "bytes": self.bytes,
                "depth": self.depth, "key": self.key, "used": self.used}


def hostile_swap(v):
    """A value of another JSON type than v, still meaning something."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return [v]
    if isinstance(v, str):
        return int(v) if v.isdigit() and len(v) < 30 else {"value": v}
    if v is None:
        return {}
    if isinstance(v, list):
        return {str(i): x for i, x in enumerate(v)}
    return list(v.values())


def hostile_confuse(v, key=None):
    """v with its scalars (or, with key, the values of key) swapped."""
    if isinstance(v, dict):
        return {k: (hostile_swap(x) if key is not None and k == key
                    else hostile_confuse(x, key))
                for k, x in v.items()}
    if isinstance(v, list):
        return [hostile_confuse(x, key) for x in v]
    return v if key is not None else hostile_swap(v)


def hostile_grow(v, n):
    """v with every non-empty list grown to n items by repeating them."""
    if isinstance(v, dict):
        return {k: hostile_grow(x, n) for k, x in v.items()}
    if isinstance(v, list) and v:
        return [hostile_grow(v[i % len(v)], n) for i in range(n)]
    return v


def hostile_body(fault, body):
    """The bytes of the hostile answer made from the real one's."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {"data": doc}
    if fault.type == "deep":
        # built as text: json.dumps would recurse depth times
        doc["data"] = None
        text = json_bytes(doc).decode()
        deep = "[" * fault.depth + "]" * fault.depth
        return text.replace('"data":null', '"data":' + deep, 1).encode()
    if fault.type == "confused":
        if fault.key is not None:
            doc = hostile_confuse(doc, fault.key)
        elif isinstance(doc.get("data"), dict):
            doc["data"] = hostile_confuse(doc["data"])
        else:
            doc = hostile_confuse(doc)
        return json_bytes(doc)
    doc = hostile_grow(doc, fault.elements)
    if fault.bytes:
        doc["padding"] = "x" * fault.bytes
    return json_bytes(doc)


# --- webhooks (TIKTOK_API.md: Webhooks, Webhook details) ---------------------

WEBHOOK_DEFAULTS = {
    "url": "",              # the callback URL registered in the portal
    "process_ms": 300,      # media ready -> the post's events
    "retry_ms": 500,        # back-off: retry_ms, 2x, 4x, ... while not 200
    "max_tries": 5,
    "duplicates": 0,        # each delivery sent this many more times
    "reverse": False,       # a post's events in the opposite order
}


class Webhooks:
    """TikTok's side of webhooks: with a URL configured, a post's media
    being ready leads to its events after process_ms (instead of waiting
    for status polls), each signed as TikTok signs them and POSTed until
    answered 200, with back-off.  Tests also send single deliveries with
    any flaw (Control: /webhooks/send)."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.reset()

    def reset(self):
        self.config = dict(WEBHOOK_DEFAULTS)
        self.deliveries = []        # automatic ones, for GET /webhooks

    @property
    def on(self):
        return bool(self.config["url"])

    def body(self, event, open_id, content, client_key=None,
             create_time=None):
        # content is itself a JSON string (TikTok's shape)
        return json.dumps({
            "client_key": self.sb.client_key if client_key is None
            else client_key,
            "event": event,
            "create_time": int(time.time()) if create_time is None
            else create_time,
            "user_openid": open_id,
            "content": content if isinstance(content, str)
            else json.dumps(content, separators=(",", ":")),
        }, separators=(",", ":")).encode()

    def signature(self, body, t, secret=None):
        key = (self.sb.client_secret if secret is None else secret).encode()
        mac = hmac.new(key, str(t).encode() + b"." + body, hashlib.sha256)
        return "t=%d,s=%s" % (t, mac.hexdigest())

    async def post(self, url, body, signature):
        """One delivery: (status, body text), status 0 when no answer."""
        u = urllib.parse.urlsplit(url)
        tls = None
        if u.scheme == "https":
            tls = ssl.create_default_context()
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        head = ["POST %s HTTP/1.1" % (u.path or "/"),
                "Host: %s" % u.netloc,
                "Content-Type: application/json",
                "Content-Length: %d" % len(body),
                "Connection: close"]
        if signature is not None:
            head.append("TikTok-Signature: " + signature)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                u.hostname, u.port or (443 if tls else 80), ssl=tls), 5)
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            raw = await asyncio.wait_for(reader.read(), 10)
            writer.close()
        except (OSError, asyncio.TimeoutError) as e:
            self.sb.log.write("webhook %s: %r" % (url, e))
            return 0, ""
        status_line, _, rest = raw.partition(b"\r\n")
        parts = status_line.split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() \
            else 0
        return status, rest.partition(b"\r\n\r\n")[2].decode("utf-8",
                                                               "replace")

    async def deliver(self, event, open_id, content, url=None, body=None):
        """Until answered 200 or max_tries, with back-off; every attempt
        (and a duplicate, given the same body) carries the same bytes."""
        if body is None:
            body = self.body(event, open_id, content)
        entry = {"event": event, "user_openid": open_id,
                 "content": content, "attempts": [], "delivered": False}
        self.deliveries.append(entry)
        cfg = dict(self.config, url=url or self.config["url"])
        for attempt in range(cfg["max_tries"]):
            if attempt:
                await asyncio.sleep(cfg["retry_ms"] * 2 ** (attempt - 1)
                                    / 1000)
            t = int(time.time())
            status, _ = await self.post(cfg["url"], body,
                                        self.signature(body, t))
            entry["attempts"].append(status)
            self.sb.log.write("webhook %s -> %d" % (event, status))
            if status == 200:
                entry["delivered"] = True
                break
        return entry

    async def send_all(self, events):
        if self.config["reverse"]:
            events = list(reversed(events))
        for event, open_id, content in events:
            # a duplicate is the same delivery again, byte for byte
            body = self.body(event, open_id, content)
            for _ in range(1 + self.config["duplicates"]):
                await self.deliver(event, open_id, content, body=body)

    def media_ready(self, post):
        """The media is all there: TikTok processes it, then tells."""
        if not self.on:
            return
        post.timed = True
        asyncio.get_running_loop().call_later(
            self.config["process_ms"] / 1000, self.processed, post)

    def processed(self, post):
        # TikTok's publish_type: INBOX_SHARE for what goes to the inbox
        sb = self.sb
        kind = "INBOX_SHARE" if post.inbox else "DIRECT_PUBLISH"
        if post.status in ("PUBLISH_COMPLETE", "FAILED",
                           "SEND_TO_USER_INBOX"):
            return
        if post.source == "PULL_FROM_URL":
            post.downloaded_bytes = sb.config["pull_video_size"]
        reason = post.fail_reason
        if reason is None and post.upload is not None and \
                sb.config["check_media_format"] and \
                not looks_like_video(post.upload.head):
            reason = "file_format_check_failed"
        ids = {"publish_id": post.publish_id, "publish_type": kind}
        if reason:
            post.status, post.final_fail_reason = "FAILED", reason
            events = [("post.publish.failed", post.open_id,
                       dict(ids, reason=reason))]
        elif post.inbox:
            # the creator was notified: the post is theirs to finish
            sb.publish(post)
            events = [("post.publish.inbox_delivered", post.open_id, ids)]
        else:
            sb.publish(post)
            events = [("post.publish.complete", post.open_id, ids)]
            if post.public:
                events.append(("post.publish.publicly_available",
                               post.open_id, dict(ids,
                                                  post_id=int(post.post_id))))
        asyncio.get_running_loop().create_task(self.send_all(events))

    def user_removed(self, open_id, reason=1):
        if self.on:
            asyncio.get_running_loop().create_task(self.send_all(
                [("authorization.removed", open_id, {"reason": reason})]))

    async def send(self, d):
        """One delivery as the test asks for it, flaws included; answered
        with what the callback URL said."""
        url = d.get("url", self.config["url"])
        if not url:
            raise ControlError(400, "no url: set one with POST "
                               "/webhooks/config or in this request")
        if d.get("retry"):
            # as TikTok delivers on its own: signed now, retried
            entry = await self.deliver(d.get("event", "post.publish.complete"),
                                       d.get("user_openid", DEFAULT_OPEN_ID),
                                       d.get("content", {}), url)
            return entry
        if "raw_body" in d:
            body = d["raw_body"].encode()
        else:
            body = self.body(d.get("event", "post.publish.complete"),
                             d.get("user_openid", DEFAULT_OPEN_ID),
                             d.get("content", {}), d.get("client_key"),
                             d.get("create_time"))
        if d.get("pad"):
            body = body[:-1] + b',"pad":"' + b"x" * d["pad"] + b'"}'
        t = int(time.time()) + d.get("timestamp_offset", 0)
        sig = self.signature(body, t, d.get("secret"))
        flaw = d.get("signature")
        if flaw == "none":
            sig = None
        elif flaw == "bad":
            sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        elif flaw == "malformed":
            sig = "s=" + sig.partition(",s=")[2]
        elif flaw is not None:
            raise ControlError(400, "signature must be none, bad or "
                               "malformed")
        answers = []
        for _ in range(1 + d.get("duplicates", 0)):
            status, text = await self.post(url, body, sig)
            answers.append({"status": status, "body": text})
        return {"answers": answers, "status": answers[0]["status"],
                "body": answers[0]["body"]}


# --- the request log (--log) -------------------------------------------------

class LineLog:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1, encoding="utf-8") \
            if path else None

    def write(self, text):
        if self.f:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            self.f.write("%s.%03dZ %s\n" % (stamp, int(time.time() * 1000)
                                            % 1000, text))


SECRET_QUERY_PARAMS = ("code", "state", "code_challenge", "upload_token",
                       "access_token", "refresh_token", "token")


def redacted_target(req):
    if not req.query_pairs:
        return req.path
    parts = ["%s=%s" % (k, redact(v) if k in SECRET_QUERY_PARAMS else v)
             for k, v in req.query_pairs]
    return req.path + "?" + "&".join(parts)


# --- the TikTok API ----------------------------------------------------------

class Route:
    def __init__(self, method, handler, kind, scopes=()):
        self.method = method
        self.handler = handler
        self.kind = kind            # page | oauth | api
        self.scopes = scopes        # any one of them is enough


class Sandbox:
    def __init__(self, args, log):
        self.client_key = args.client_key
        self.client_secret = args.client_secret
        self.redirect_uris = list(args.redirect_uri)
        self.host = "localhost"         # the API's host name in URLs
        self.upload_host = "127.0.0.1"  # another name for the upload host
        self.port = 0
        self.control_port = 0
        self.log = log
        self.cdn_key = secrets.token_bytes(32)
        self.demo = args.demo
        self.webhooks = Webhooks(self)
        self.routes = {
            "/v2/auth/authorize/": Route("GET", self.authorize, "page"),
            "/v2/auth/authorize/consent/": Route("POST", self.consent,
                                                 "page"),
            "/v2/oauth/token/": Route("POST", self.oauth_token, "oauth"),
            "/v2/oauth/revoke/": Route("POST", self.oauth_revoke, "oauth"),
            "/v2/user/info/": Route("GET", self.user_info, "api",
                                    ("user.info.basic",)),
            "/v2/video/list/": Route("POST", self.video_list, "api",
                                     ("video.list",)),
            "/v2/video/query/": Route("POST", self.video_query, "api",
                                      ("video.list",)),
            "/v2/post/publish/creator_info/query/": Route(
                "POST", self.creator_info, "api", ("video.publish",)),
            "/v2/post/publish/video/init/": Route(
                "POST", self.video_init, "api", ("video.publish",)),
            "/v2/post/publish/inbox/video/init/": Route(
                "POST", self.inbox_init, "api", ("video.upload",)),
            # the post_mode says which of the two scopes it needs
            "/v2/post/publish/content/init/": Route(
                "POST", self.content_init, "api",
                ("video.publish", "video.upload")),
            "/v2/post/publish/status/fetch/": Route(
                "POST", self.status_fetch, "api",
                ("video.publish", "video.upload")),
            "/v2/post/publish/cancel/": Route(
                "POST", self.cancel, "api", ("video.publish",)),
        }
        self.reset()

    def reset(self):
        """Everything but the registered client goes; ids start again."""
        self.config = copy.deepcopy(DEFAULT_CONFIG)
        self.video_ids = itertools.count(FIRST_VIDEO_ID)
        self.upload_ids = itertools.count(FIRST_UPLOAD_ID)
        self.publish_ids = itertools.count(FIRST_PUBLISH_ID)
        self.users = {}
        self.codes = {}
        self.access = {}            # access token -> AccessToken
        self.refresh = {}           # current refresh token -> Grant
        self.grants = []
        self.posts = {}             # publish_id -> Post
        self.uploads = {}           # upload_id -> Upload
        self.auth_scripts = []
        self.outcomes = []          # scripted fail reasons for next inits
        self.faults = []
        self.calls = collections.Counter()
        self.requests = collections.defaultdict(
            lambda: collections.deque(maxlen=KEEP_REQUESTS))
        self.all_requests = collections.deque(maxlen=KEEP_REQUESTS)
        self.windows = collections.defaultdict(collections.deque)
        self.post_times = collections.defaultdict(collections.deque)
        if hasattr(self, "webhooks"):
            self.webhooks.reset()
        self.put_user(copy.deepcopy(DEMO_USER if self.demo else DEFAULT_USER))

    # ---- users and videos ----

    def put_user(self, spec):
        open_id = spec.get("open_id")
        if not isinstance(open_id, str) or not open_id:
            raise ControlError(400, "open_id (string) is required")
        user = User(open_id)
        user.username = "user_" + re.sub(r"[^A-Za-z0-9_.]", "", open_id)[:20]
        for key, value in spec.items():
            if key in ("open_id", "videos", "video_count"):
                continue
            if key not in User.FIELDS:
                raise ControlError(400, "unknown user field: " + key)
            want = User.FIELDS[key][1]
            ok = isinstance(value, bool) if want is bool else \
                is_int(value) if want is int else isinstance(value, want)
            if not ok:
                raise ControlError(400, "%s must be %s" % (key, want.__name__))
            setattr(user, key, value)
        if user.can_post not in CAN_POST_VALUES:
            raise ControlError(400, "can_post must be one of "
                               + ", ".join(CAN_POST_VALUES))
        if "videos" in spec:
            if not isinstance(spec["videos"], list):
                raise ControlError(400, "videos must be a list")
            for i, v in enumerate(spec["videos"]):
                user.add_video(self.video_from_spec(v, i))
        count = spec.get("video_count", 0)
        if not is_int(count) or not 0 <= count <= 10000:
            raise ControlError(400, "video_count must be 0..10000")
        self.generate_videos(user, count)
        self.users[open_id] = user
        return user

    def video_from_spec(self, v, index):
        if not isinstance(v, dict):
            raise ControlError(400, "each video must be an object")
        vid = v.get("id")
        if vid is None:
            vid = str(next(self.video_ids))
        if not isinstance(vid, str) or not vid.isdigit():
            raise ControlError(400, "video id must be a string of digits")
        if "create_time" in v:
            if not is_int(v["create_time"]):
                raise ControlError(400, "create_time must be epoch seconds")
            create_ms = v["create_time"] * 1000 + 500
        else:               # a day ago, a minute apart, in list order
            create_ms = int(time.time() * 1000) - 86_400_000 + index * 60_000
        for key, value in v.items():
            want = VIDEO_SPEC.get(key)
            if want is None:
                raise ControlError(400, "unknown video field: " + key)
            ok = isinstance(value, bool) if want is bool else \
                is_int(value) if want is int else isinstance(value, want)
            if key != "id" and not ok:
                raise ControlError(400, "video %s must be %s" % (
                    key, want.__name__))
        return Video(vid, create_ms, v.get("title", "Sandbox video"),
                     v.get("video_description", ""), v.get("duration", 15),
                     v.get("height", 1920), v.get("width", 1080),
                     v.get("like_count", 0), v.get("comment_count", 0),
                     v.get("share_count", 0), v.get("view_count", 0),
                     bool(v.get("public", True)))

    def generate_videos(self, user, n):
        """n public videos an hour apart, oldest first so ids grow with
        time.  Some counts exceed 2^32 (int64 in TikTok's API)."""
        now_ms = int(time.time() * 1000)
        for i in range(n):
            age = n - i                     # hours; the last is the newest
            create_ms = now_ms - age * 3_600_000 - 123
            k = i + 1
            user.add_video(Video(
                str(next(self.video_ids)), create_ms,
                "Sandbox clip %d \u2728" % k,
                "Clip %d from the sandbox #tiktok \U0001F3AC" % k,
                duration=10 + (k * 7) % 50,
                like_count=1000 * k + 7, comment_count=10 * k + 3,
                share_count=k,
                view_count=(5_000_000_000 + k if k % 5 == 0
                            else 10_000 + 137 * k)))

    def cdn_url(self, kind, name):
        """A signed URL that stops working after cover_url_ttl, like
        TikTok's CDN links (x-expires / x-signature)."""
        expires = int(time.time()) + self.config["cover_url_ttl"]
        sig = hmac.new(self.cdn_key, ("%s/%s:%d" % (kind, name, expires))
                       .encode(), hashlib.sha256).hexdigest()[:32]
        return "https://%s:%d/cdn/%s/%s.image?x-expires=%d&x-signature=%s" % (
            self.host, self.port, kind, urllib.parse.quote(name),
            expires, sig)

    def user_field(self, user, field):
        if field in ("avatar_url", "avatar_url_100", "avatar_large_url"):
            return user.avatar_url or self.cdn_url("avatar", user.open_id)
        if field == "profile_deep_link":
            return user.profile_deep_link or \
                "https://vm.tiktok.com/sandbox/%s/" % user.username
        if field == "video_count":
            return len(user.public_videos())
        return getattr(user, field)

    def render_video(self, user, v, fields):
        share = ("https://www.tiktok.com/@%s/video/%s"
                 "?utm_campaign=tt4d_open_api&utm_source=%s"
                 % (user.username, v.id, self.client_key))
        values = {
            "id": v.id,
            "create_time": v.create_ms // 1000,
            "cover_image_url": self.cdn_url("cover", v.id),
            "share_url": share,
            "video_description": v.description,
            "duration": v.duration,
            "height": v.height,
            "width": v.width,
            "title": v.title,
            "embed_html": '<blockquote class="tiktok-embed" cite="%s" '
                          'data-video-id="%s"><section></section></blockquote>'
                          '<script async '
                          'src="https://www.tiktok.com/embed.js"></script>'
                          % (share, v.id),
            "embed_link": "https://www.tiktok.com/player/v1/%s" % v.id,
            "like_count": v.like_count,
            "comment_count": v.comment_count,
            "share_count": v.share_count,
            "view_count": v.view_count,
        }
        return {f: values[f] for f in fields}

    # ---- the request cycle ----

    async def handle(self, req):
        endpoint = self.endpoint_of(req.path)
        self.calls[endpoint] += 1
        try:
            if endpoint == "/upload/":
                resp = await self.upload(req)
            elif endpoint == "/sink/":
                resp = await self.sink(req)
            else:
                req.body_bytes = await req.body.read_all(MAX_API_BODY)
                resp = await self.dispatch(req, endpoint)
        except HttpError as e:
            resp = Response(e.status, (e.message + "\n").encode(),
                            "text/plain", close=True)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.log_line(req, endpoint, None, "client went away")
            raise
        except Exception:
            self.log.write("ERROR " + traceback.format_exc().replace(
                "\n", " | "))
            resp = self.api_error_response(req, ApiError(
                "internal_error", "sandbox bug, see its log"))
        if resp is not DROP:
            resp.headers.append(("X-Tt-Logid", req.log_id))
        self.record(req, endpoint, resp)
        self.log_line(req, endpoint, resp)
        return resp

    @staticmethod
    def endpoint_of(path):
        for prefix in ("/upload/", "/cdn/", "/sink/"):
            if path.startswith(prefix):
                return prefix
        return path

    async def dispatch(self, req, endpoint):
        fault = self.take_fault(endpoint)
        if fault is not None and not fault.after:
            if fault.type == "delay":
                await asyncio.sleep(fault.ms / 1000)
            else:
                return self.fault_response(req, fault, endpoint)
        resp = self.route(req, endpoint)
        if fault is not None and fault.after:   # the work is done
            return self.fault_response(req, fault, endpoint, resp)
        return resp

    def route(self, req, endpoint):
        if endpoint == "/cdn/":
            return self.cdn(req)
        route = self.routes.get(req.path)
        if route is None:
            return self.api_error_response(req, ApiError(
                "not_found", "No such endpoint: " + req.path))
        if req.method != route.method:
            err = ApiError("method_not_allowed",
                           "Use %s for %s" % (route.method, req.path),
                           headers=[("Allow", route.method)])
            return self.api_error_response(req, err)
        if route.kind == "page":
            return self.run_page(req, route)
        if route.kind == "oauth":
            return self.run_oauth(req, route)
        return self.run_api(req, route)

    def run_page(self, req, route):
        try:
            return route.handler(req)
        except PageError as e:
            page = ("<!DOCTYPE html><html><head><title>TikTok</title></head>"
                    "<body><h1>Something went wrong</h1>"
                    "<p>error: <code id=\"error\">%s</code></p>"
                    "<p>error_description: <span id=\"error_description\">%s"
                    "</span></p><p>log_id: %s</p></body></html>\n") % (
                        html.escape(e.error), html.escape(e.description),
                        req.log_id)
            return Response(400, page.encode(), "text/html; charset=UTF-8")

    def run_oauth(self, req, route):
        try:
            return json_response(200, route.handler(req))
        except OAuthError as e:
            return self.oauth_error_response(req, e.error, e.description)

    def oauth_error_response(self, req, error, description, status=None,
                             headers=()):
        body = {"error": error, "error_description": description,
                "log_id": req.log_id}
        return json_response(status or self.config["oauth_error_status"],
                             body, headers)

    def run_api(self, req, route):
        try:
            tok = self.authenticate(req)
            if not set(route.scopes) & set(tok.scopes):
                raise ApiError("scope_not_authorized",
                               "The user did not authorize the scope "
                               "required for this endpoint: "
                               + " or ".join(route.scopes))
            self.check_rate(req.path, tok)
            data = route.handler(req, tok)
        except ApiError as e:
            return self.api_error_response(req, e)
        return json_response(200, {"data": data, "error": {
            "code": "ok", "message": "", "log_id": req.log_id}})

    def api_error_response(self, req, err):
        return json_response(err.status, {"data": {}, "error": {
            "code": err.code, "message": err.message,
            "log_id": req.log_id}}, err.headers)

    # ---- faults ----

    def take_fault(self, endpoint):
        for fault in self.faults:
            if fault.matches(endpoint):
                fault.used += 1
                if fault.count:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                return fault
        return None

    def fault_response(self, req, fault, endpoint, real=None):
        """The injected answer, in the style of the endpoint (flat for
        OAuth, the envelope elsewhere).  real: the answer the endpoint gave,
        for a fault that comes after the work."""
        oauth = endpoint in ("/v2/oauth/token/", "/v2/oauth/revoke/")
        if fault.type == "drop":
            return DROP
        if fault.type == "truncate":
            if real is None:
                real = self.api_error_response(req, ApiError(
                    "internal_error", "injected fault: truncate"))
            real.truncate = True
            return real
        if fault.type in Fault.HOSTILE:
            if real is None or real is DROP:
                return real
            return Response(real.status, hostile_body(fault, real.body),
                            JSON_TYPE, [h for h in real.headers
                                        if h[0].lower() != "content-type"])
        if fault.type == "malformed_json":
            body = ('{"data":{"videos":[{"id":"7300000000000000001","title":'
                    '"trunc').encode()
            return Response(200, body, JSON_TYPE)
        if fault.type == "rate_limit":
            code, status = "rate_limit_exceeded", 429
            headers = [("Retry-After", str(fault.retry_after))]
        elif fault.type == "status":
            code, status, headers = "internal_error", fault.status or 500, []
        elif fault.type == "token_invalid":
            code, headers = ("invalid_grant" if oauth
                             else "access_token_invalid"), []
            status = None if oauth else 401
        else:                               # error_code
            code, headers = fault.code, []
            status = fault.status or (None if oauth
                                      else ERROR_STATUS.get(fault.code, 400))
        message = "injected fault: " + fault.type
        if oauth:
            return self.oauth_error_response(req, code, message, status,
                                             headers)
        return self.api_error_response(req, ApiError(code, message, status,
                                                     headers))

    # ---- bookkeeping ----

    def record(self, req, endpoint, resp):
        entry = {
            "time": round(time.time(), 3), "conn": req.conn.id,
            "method": req.method, "path": req.path,
            "query": req.query_string,
            "headers": {k.lower(): v for k, v in req.headers},
            "status": None if resp is DROP else resp.status,
            "log_id": req.log_id,
        }
        if endpoint in ("/upload/", "/sink/"):
            entry["body_bytes"] = req.body.received
            entry["content_range"] = req.header("content-range")
        else:
            entry["body"] = req.body_bytes.decode("utf-8", "replace")
        self.requests[endpoint].append(entry)
        self.all_requests.append(entry)

    def log_line(self, req, endpoint, resp, note=""):
        status = "dropped" if resp is DROP else \
            "-" if resp is None else resp.status
        size = len(resp.body) if isinstance(resp, Response) else 0
        auth = req.header("authorization", "")
        tok = redact(auth.split(" ", 1)[-1]) if auth else "-"
        extra = ""
        if endpoint == "/v2/oauth/token/":
            form = dict(urllib.parse.parse_qsl(
                req.body_bytes.decode("utf-8", "replace")))
            extra = " grant_type=%s" % form.get("grant_type", "-")
        elif endpoint == "/upload/":
            extra = " range=%s in=%d" % (req.header("content-range", "-"),
                                         req.body.received)
        self.log.write("c%d %s %s %s -> %s %dB %dms token=%s log_id=%s%s%s" % (
            req.conn.id, req.conn.peer, req.method, redacted_target(req),
            status, size, (time.monotonic() - req.started) * 1000, tok,
            req.log_id, extra, " " + note if note else ""))

    # ---- authorize page (www.tiktok.com) ----

    def authorize(self, req):
        redirect_uri, scopes, state, challenge = self.authorize_request(
            req.query_pairs)
        if self.demo:
            return self.consent_page(req.query_string, redirect_uri, scopes)
        return self.user_decides(redirect_uri, scopes, state, challenge)

    def consent(self, req):
        """The consent page's buttons: the authorize request travels back
        whole in "request" and is checked again, like TikTok would."""
        if not self.demo:
            raise PageError("invalid_request", "there is no consent page: "
                            "the sandbox runs without --demo")
        form = single_params(urllib.parse.parse_qsl(
            req.body_bytes.decode("utf-8", "replace"),
            keep_blank_values=True))
        if form is None or form.get("decision") not in ("authorize",
                                                        "cancel"):
            raise PageError("invalid_request", "decision must be authorize "
                            "or cancel")
        redirect_uri, scopes, state, challenge = self.authorize_request(
            urllib.parse.parse_qsl(form.get("request", ""),
                                   keep_blank_values=True))
        if form["decision"] == "cancel":
            return redirect(redirect_uri, [
                ("error", "access_denied"),
                ("error_description", "The user denied the request"),
                ("state", state)])
        return self.user_decides(redirect_uri, scopes, state, challenge)

    def consent_page(self, query, redirect_uri, scopes):
        user = self.users.get(DEFAULT_OPEN_ID) or \
            next(iter(self.users.values()), None)
        if user is None:
            raise PageError("invalid_request", "the sandbox has no user")
        e = html.escape
        items = "".join("<li><code>%s</code></li>" % e(s) for s in scopes)
        page = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize %(app)s - TikTok (sandbox)</title>
<style>
 body { font: 15px/1.45 system-ui, sans-serif; background: #f1f1f2;
        margin: 0; }
 main { max-width: 26rem; margin: 3rem auto; background: #fff;
        border-radius: 12px; padding: 1.5rem 2rem; }
 .who { display: flex; gap: .75rem; align-items: center; }
 .who img { width: 48px; height: 48px; border-radius: 50%%; }
 .note { color: #666; font-size: 13px; }
 button { font: inherit; padding: .6rem 1.2rem; border-radius: 6px;
          border: 1px solid #ccc; background: #fff; cursor: pointer; }
 button[value=authorize] { background: #fe2c55; color: #fff;
                           border-color: #fe2c55; }
</style></head><body><main>
<p class="note">TikTok sandbox: not the real TikTok</p>
<h1 id="consent-title">%(app)s would like to access your TikTok account</h1>
<div class="who"><img alt="" src="%(avatar)s">
<div><strong id="consent-user">%(name)s</strong><br>
<span class="note">@%(username)s</span></div></div>
<p>It asks for:</p><ul id="consent-scopes">%(items)s</ul>
<p class="note">You will be sent back to <code>%(back)s</code>.</p>
<form method="post" action="/v2/auth/authorize/consent/">
<input type="hidden" name="request" value="%(query)s">
<button name="decision" value="cancel">Cancel</button>
<button name="decision" value="authorize" id="authorize">Authorize</button>
</form></main></body></html>
""" % {"app": e(self.client_key), "avatar": e(
            self.user_field(user, "avatar_url")), "name": e(user.display_name),
            "username": e(user.username or ""), "items": items,
            "back": e(redirect_uri), "query": e(query)}
        return Response(200, page.encode(), "text/html; charset=UTF-8",
                        [("Cache-Control", "no-store")])

    def authorize_request(self, pairs):
        """Checks an authorize request's parameters as TikTok does; returns
        (redirect_uri, scopes, state, challenge)."""
        q = single_params(pairs)
        if q is None:
            raise PageError("invalid_request", "a parameter is repeated")
        if q.get("client_key") != self.client_key:
            raise PageError("invalid_client", "client_key is missing or "
                            "unknown")
        if "response_type" not in q:
            raise PageError("invalid_request", "response_type is required")
        if q["response_type"] != "code":
            raise PageError("unsupported_response_type",
                            "response_type must be code")
        redirect_uri = q.get("redirect_uri")
        if not redirect_uri:
            raise PageError("invalid_request", "redirect_uri is required")
        problem = redirect_uri_problem(redirect_uri)
        if problem:
            raise PageError("invalid_request", "redirect_uri " + problem)
        if redirect_uri not in self.redirect_uris:
            raise PageError("invalid_request", "redirect_uri is not "
                            "registered for this app")
        scopes = self.requested_scopes(q.get("scope"))
        if not q.get("state"):
            raise PageError("invalid_request", "state is required")
        challenge = self.pkce_challenge(q)
        if q.get("disable_auto_auth", "0") not in ("0", "1"):
            raise PageError("invalid_request", "disable_auto_auth must be "
                            "0 or 1")
        return redirect_uri, scopes, q["state"], challenge

    @staticmethod
    def requested_scopes(scope):
        if not scope:
            raise PageError("invalid_scope", "scope is required")
        scopes = []
        for s in scope.split(","):
            if s not in SCOPES:
                raise PageError("invalid_scope", "unknown scope: %r" % s)
            if s not in scopes:
                scopes.append(s)
        return scopes

    @staticmethod
    def pkce_challenge(q):
        """TikTok's quirk: S256 only and the challenge is the *hex* SHA-256
        of the verifier, not base64url."""
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method")
        if challenge is None:
            if method is not None:
                raise PageError("invalid_request", "code_challenge_method "
                                "without code_challenge")
            return None
        if method != "S256":
            raise PageError("invalid_request", "code_challenge_method must "
                            "be S256")
        if not CHALLENGE_RE.fullmatch(challenge):
            raise PageError("invalid_request", "code_challenge must be the "
                            "hex SHA-256 of the code_verifier (64 lowercase "
                            "hex characters)")
        return challenge

    def next_auth_script(self):
        if not self.auth_scripts:
            return {}
        script = self.auth_scripts[0]
        if script["count"]:
            script["count"] -= 1
            if script["count"] == 0:
                self.auth_scripts.pop(0)
        return script

    def user_decides(self, redirect_uri, scopes, state, challenge):
        """What the scripted user does on TikTok's consent page."""
        script = self.next_auth_script()
        if script.get("deny"):
            return redirect(redirect_uri, [
                ("error", script.get("error", "access_denied")),
                ("error_description", script.get(
                    "error_description", "The user denied the request")),
                ("state", state)])
        open_id = script.get("open_id", DEFAULT_OPEN_ID)
        if open_id not in self.users:
            raise PageError("invalid_request", "the scripted user no "
                            "longer exists")
        if script.get("grant_scopes") is not None:
            allowed = script["grant_scopes"].split(",")
            scopes = [s for s in scopes if s in allowed]
        code = rand_str(64, ALNUM + "-_") + "*0!" + rand_str(4, string.digits)
        self.codes[code] = AuthCode(self.client_key, redirect_uri, scopes,
                                    open_id, challenge,
                                    time.time() + self.config["code_ttl"])
        return redirect(redirect_uri, [("code", code),
                                       ("scopes", ",".join(scopes)),
                                       ("state", state)])

    # ---- OAuth endpoints (open.tiktokapis.com/v2/oauth/) ----

    def form(self, req):
        ctype, _ = media_type(req.header("content-type"))
        if ctype != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "Content-Type must be "
                             "application/x-www-form-urlencoded")
        try:
            text = req.body_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "the body is not UTF-8")
        form = single_params(urllib.parse.parse_qsl(text,
                                                    keep_blank_values=True))
        if form is None:
            raise OAuthError("invalid_request", "a parameter is repeated")
        return form

    def check_client(self, form):
        if form.get("client_key") != self.client_key:
            raise OAuthError("invalid_client", "client_key is missing or "
                             "unknown")
        if not hmac.compare_digest(form.get("client_secret", ""),
                                   self.client_secret):
            raise OAuthError("invalid_client", "client_secret is wrong")

    def oauth_token(self, req):
        form = self.form(req)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type in ("authorization_code", "refresh_token"):
            self.calls["/v2/oauth/token/#" + grant_type] += 1
        else:
            raise OAuthError("unsupported_grant_type", "grant_type must be "
                             "authorization_code or refresh_token")
        self.check_client(form)
        if grant_type == "authorization_code":
            return self.exchange_code(form)
        return self.rotate_refresh_token(form)

    def exchange_code(self, form):
        code = form.get("code")
        if not code:
            raise OAuthError("invalid_request", "code is required")
        if not form.get("redirect_uri"):
            raise OAuthError("invalid_request", "redirect_uri is required")
        # Single use: the code is gone once presented, whatever follows.
        c = self.codes.pop(code, None)
        if c is None or time.time() >= c.expires_at:
            raise OAuthError("invalid_grant", "Authorization code is "
                             "expired, used or unknown.")
        if c.client_key != form["client_key"]:
            raise OAuthError("invalid_grant", "code was issued to another "
                             "client")
        if c.redirect_uri != form["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match "
                             "the one sent to authorize")
        if c.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError("invalid_request", "code_verifier is "
                                 "required")
            if not VERIFIER_RE.fullmatch(verifier):
                raise OAuthError("invalid_request", "code_verifier must be "
                                 "43-128 characters of [A-Za-z0-9-._~]")
            digest = hashlib.sha256(verifier.encode()).hexdigest()
            if not hmac.compare_digest(digest, c.challenge):
                raise OAuthError("invalid_grant", "code_verifier does not "
                                 "match code_challenge")
        if c.open_id not in self.users:
            raise OAuthError("invalid_grant", "the user no longer exists")
        return self.issue_tokens(c.open_id, c.scopes)

    def rotate_refresh_token(self, form):
        """Refresh tokens rotate: the old one dies the moment a new one is
        issued."""
        old = form.get("refresh_token")
        if not old:
            raise OAuthError("invalid_request", "refresh_token is required")
        grant = self.refresh.get(old)
        if grant is None or grant.revoked or \
                time.time() >= grant.refresh_expires_at or \
                grant.client_key != form["client_key"]:
            raise OAuthError("invalid_grant", "Refresh token is invalid or "
                             "expired.")
        del self.refresh[old]
        return self.token_response(grant)

    def issue_tokens(self, open_id, scopes, expires_in=None,
                     refresh_expires_in=None):
        grant = Grant(open_id, self.client_key, list(scopes))
        self.grants.append(grant)
        return self.token_response(grant, expires_in, refresh_expires_in)

    def token_response(self, grant, expires_in=None, refresh_expires_in=None):
        """A new access token and a new refresh token for the grant; the
        flat answer of /v2/oauth/token/."""
        now = time.time()
        if expires_in is None:
            expires_in = self.config["access_expires_in"]
        if refresh_expires_in is None:
            refresh_expires_in = self.config["refresh_expires_in"]
        access = "act." + secrets.token_hex(16) + rand_str(28) + "!" + \
            rand_str(4, string.digits) + ".va"
        refresh = "rft." + secrets.token_hex(16) + rand_str(28) + "!" + \
            rand_str(4, string.digits) + ".va"
        self.access[access] = AccessToken(access, grant, now + expires_in)
        grant.refresh_token = refresh
        grant.refresh_expires_at = now + refresh_expires_in
        self.refresh[refresh] = grant
        return {"access_token": access, "expires_in": expires_in,
                "open_id": grant.open_id, "refresh_expires_in":
                refresh_expires_in, "refresh_token": refresh,
                "scope": ",".join(grant.scopes), "token_type": "Bearer"}

    def oauth_revoke(self, req):
        form = self.form(req)
        self.check_client(form)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        at = self.access.get(token)
        if at is not None:
            self.revoke_user(at.open_id)
        return {}       # unknown tokens too (RFC 7009): nothing to revoke

    def revoke_user(self, open_id):
        """The user's authorization of this app ends: every access token
        and refresh token issued for it stops working."""
        for grant in self.grants:
            if grant.open_id == open_id:
                grant.revoked = True
                self.refresh.pop(grant.refresh_token, None)

    # ---- the envelope endpoints ----

    def authenticate(self, req):
        auth = req.header("authorization", "")
        m = re.fullmatch(r"(?i:bearer) +(\S+)", auth)
        at = self.access.get(m.group(1)) if m else None
        if at is None or not at.valid(time.time()) or \
                at.open_id not in self.users:
            raise ApiError("access_token_invalid", "The access token is "
                           "invalid or not found in the request.")
        return at

    def check_rate(self, path, tok):
        limit = self.config["rate_limits"].get(path)
        if not limit:
            return
        who = tok.token if path in PER_TOKEN_LIMITS else self.client_key
        window = self.windows[(path, who)]
        now = time.monotonic()
        while window and window[0] <= now - RATE_WINDOW:
            window.popleft()
        if len(window) >= limit:
            retry = max(1, math.ceil(window[0] + RATE_WINDOW - now))
            raise ApiError("rate_limit_exceeded", "API rate limit exceeded "
                           "(%d requests per minute)" % limit,
                           headers=[("Retry-After", str(retry))])
        window.append(now)

    @staticmethod
    def fields(req, known, error):
        raw = req.query_first("fields")
        if raw is None or not raw.strip():
            raise error("fields is required")
        fields = [f.strip() for f in raw.split(",") if f.strip()]
        for f in fields:
            if f not in known:
                raise error("unknown field: " + f)
        return list(dict.fromkeys(fields))

    @staticmethod
    def json_object(req, error, allow_empty=False):
        if not req.body_bytes.strip():
            if allow_empty:
                return {}
            raise error("a JSON body is required")
        try:
            body = parse_json(req.body_bytes)
        except ValueError:
            raise error("the body is not valid JSON")
        if not isinstance(body, dict):
            raise error("the body must be a JSON object")
        return body

    def user_info(self, req, tok):
        fields = self.fields(req, USER_FIELD_SCOPE, invalid_params)
        missing = [f for f in fields if USER_FIELD_SCOPE[f] not in tok.scopes]
        if missing:
            raise ApiError("scope_permission_missed", "%s need scope %s" % (
                ",".join(missing), ",".join(sorted({USER_FIELD_SCOPE[f]
                                                   for f in missing}))))
        user = self.users[tok.open_id]
        return {"user": {f: self.user_field(user, f) for f in fields}}

    def video_list(self, req, tok):
        fields = self.fields(req, VIDEO_FIELDS, invalid_params)
        body = self.json_object(req, invalid_params, allow_empty=True)
        max_count = body.get("max_count")
        if max_count is None:
            max_count = 10
        if not is_int(max_count) or not 1 <= max_count <= 20:
            raise invalid_params("max_count must be an integer 1..20")
        cursor = body.get("cursor")
        if cursor is None:
            cursor = 0
        if not is_int(cursor) or cursor < 0:
            raise invalid_params("cursor must be a UTC epoch in milliseconds")
        user = self.users[tok.open_id]
        # Public videos only, newest first, strictly older than the cursor.
        older = [v for v in user.public_videos()
                 if cursor == 0 or v.create_ms < cursor]
        page = older[:max_count]
        return {"videos": [self.render_video(user, v, fields) for v in page],
                "cursor": page[-1].create_ms if page else cursor,
                "has_more": len(older) > len(page)}

    def video_query(self, req, tok):
        fields = self.fields(req, VIDEO_FIELDS, invalid_params)
        body = self.json_object(req, invalid_params)
        filters = body.get("filters")
        ids = filters.get("video_ids") if isinstance(filters, dict) else None
        if not isinstance(ids, list) or not ids or \
                not all(isinstance(i, str) for i in ids):
            raise invalid_params("filters.video_ids must be a non-empty list "
                                 "of id strings")
        if len(ids) > 20:
            raise invalid_params("at most 20 video_ids")
        user = self.users[tok.open_id]
        own = {v.id: v for v in user.public_videos()}
        return {"videos": [self.render_video(user, own[i], fields)
                           for i in dict.fromkeys(ids) if i in own]}

    # ---- Direct Post ----

    def privacy_options(self, user):
        if self.config["unaudited"]:
            return ["SELF_ONLY"]
        return list(PRIVATE_OPTIONS if user.private else PUBLIC_OPTIONS)

    def recent_posts(self, open_id):
        times = self.post_times[open_id]
        while times and times[0] <= time.time() - DAY:
            times.popleft()
        return len(times)

    def posting_block(self, user):
        """Why this creator cannot post now, or None."""
        if user.can_post != "ok":
            return user.can_post
        if self.recent_posts(user.open_id) >= self.config["daily_post_cap"]:
            return "spam_risk_too_many_posts"
        return None

    def creator_info(self, req, tok):
        user = self.users[tok.open_id]
        block = self.posting_block(user)
        if block:
            # quirk: "can't post now" arrives with HTTP 200
            raise ApiError(block, "The creator cannot post now: " + block,
                           status=200)
        return {
            "creator_avatar_url": self.user_field(user, "avatar_url"),
            "creator_username": user.username,
            "creator_nickname": user.display_name,
            "privacy_level_options": self.privacy_options(user),
            "comment_disabled": user.comment_disabled,
            "duet_disabled": user.duet_disabled,
            "stitch_disabled": user.stitch_disabled,
            "max_video_post_duration_sec": user.max_video_post_duration_sec,
        }

    def init_body(self, req):
        ctype, params = media_type(req.header("content-type"))
        if ctype != "application/json" or \
                params.get("charset", "utf-8").lower() != "utf-8":
            raise invalid_param("Content-Type must be application/json; "
                                "charset=UTF-8")
        return self.json_object(req, invalid_param)

    def video_init(self, req, tok):
        body = self.init_body(req)
        user = self.users[tok.open_id]
        post_info = self.check_post_info(body.get("post_info"), user)
        source_info, source = self.check_video_source(body)
        self.check_may_post(user)
        return self.create_post(tok, user, source, post_info, source_info)

    def check_video_source(self, body):
        source_info = body.get("source_info")
        if not isinstance(source_info, dict):
            raise invalid_param("source_info must be an object")
        source = source_info.get("source")
        if source == "PULL_FROM_URL":
            self.check_pull_url(source_info.get("video_url"))
        elif source == "FILE_UPLOAD":
            problem = chunk_plan_problem(source_info.get("video_size"),
                                         source_info.get("chunk_size"),
                                         source_info.get("total_chunk_count"))
            if problem:
                raise invalid_param(problem)
        else:
            raise invalid_param("source_info.source must be PULL_FROM_URL "
                                "or FILE_UPLOAD")
        return source_info, source

    # ---- Upload to inbox (drafts) ----

    def inbox_init(self, req, tok):
        """source_info only: the creator writes the caption and chooses the
        privacy in the TikTok app."""
        body = self.init_body(req)
        user = self.users[tok.open_id]
        unknown = sorted(set(body) - {"source_info"})
        if unknown:
            raise invalid_param("the inbox init takes source_info only, not "
                                + ", ".join(unknown))
        source_info, source = self.check_video_source(body)
        self.check_may_share(user)
        return self.create_post(tok, user, source, {}, source_info,
                                inbox=True)

    def pending_shares(self, open_id):
        now = time.time()
        return sum(1 for p in self.posts.values()
                   if p.inbox and p.open_id == open_id
                   and p.created > now - DAY
                   and p.status not in ("PUBLISH_COMPLETE", "FAILED"))

    def check_may_share(self, user):
        if user.can_post == "spam_risk_user_banned_from_posting":
            raise ApiError(user.can_post, "The creator cannot post now: "
                           + user.can_post)
        if self.pending_shares(user.open_id) >= \
                self.config["pending_share_cap"]:
            raise ApiError("spam_risk_too_many_pending_share",
                           "The creator has %d pending shares in the last "
                           "24 hours" % self.config["pending_share_cap"])

    # ---- Photo posts (the content init) ----

    def content_init(self, req, tok):
        body = self.init_body(req)
        user = self.users[tok.open_id]
        if body.get("media_type") != "PHOTO":
            raise invalid_param("media_type must be PHOTO")
        mode = body.get("post_mode")
        if mode not in PHOTO_POST_MODES:
            raise invalid_param("post_mode must be DIRECT_POST or "
                                "MEDIA_UPLOAD")
        if PHOTO_POST_MODES[mode] not in tok.scopes:
            raise ApiError("scope_not_authorized", "%s needs the scope %s"
                           % (mode, PHOTO_POST_MODES[mode]))
        unknown = sorted(set(body) - {"post_info", "source_info",
                                      "post_mode", "media_type"})
        if unknown:
            raise invalid_param("unknown fields: " + ", ".join(unknown))
        direct = mode == "DIRECT_POST"
        post_info = self.check_photo_post_info(body.get("post_info"), user,
                                               direct)
        source_info = self.check_photo_source(body.get("source_info"))
        if direct:
            self.check_may_post(user)
        else:
            self.check_may_share(user)
        return self.create_post(tok, user, "PULL_FROM_URL", post_info,
                                source_info, inbox=not direct,
                                media="PHOTO")

    def check_photo_post_info(self, post_info, user, direct):
        if post_info is None and not direct:
            return {}
        if not isinstance(post_info, dict):
            raise invalid_param("post_info must be an object")
        for name, value in post_info.items():
            want = PHOTO_POST_INFO.get(name)
            if want is None:
                # no duet, stitch, AI label or cover frame for photos
                raise invalid_param("post_info.%s is not a field of a "
                                    "photo post" % name)
            if not isinstance(value, want):
                raise invalid_param("post_info.%s must be a %s"
                                    % (name, want.__name__))
        if utf16_len(post_info.get("title", "")) > MAX_PHOTO_TITLE_UTF16:
            raise invalid_param("post_info.title is longer than %d UTF-16 "
                                "code units" % MAX_PHOTO_TITLE_UTF16)
        if utf16_len(post_info.get("description", "")) > \
                MAX_DESCRIPTION_UTF16:
            raise invalid_param("post_info.description is longer than %d "
                                "UTF-16 code units" % MAX_DESCRIPTION_UTF16)
        privacy = post_info.get("privacy_level")
        if direct:
            if not privacy:
                raise invalid_param("post_info.privacy_level is required")
            if privacy not in self.privacy_options(user):
                raise ApiError("privacy_level_option_mismatch",
                               "privacy_level %s is not among the creator's "
                               "privacy_level_options" % privacy)
        if post_info.get("brand_content_toggle") and privacy == "SELF_ONLY":
            raise invalid_param("branded content cannot be SELF_ONLY")
        return post_info

    def check_photo_source(self, source_info):
        if not isinstance(source_info, dict):
            raise invalid_param("source_info must be an object")
        if source_info.get("source") != "PULL_FROM_URL":
            raise invalid_param("photos are PULL_FROM_URL only")
        unknown = sorted(set(source_info) - {"source", "photo_images",
                                             "photo_cover_index"})
        if unknown:
            raise invalid_param("unknown source_info fields: "
                                + ", ".join(unknown))
        images = source_info.get("photo_images")
        if not isinstance(images, list) or \
                not 1 <= len(images) <= MAX_PHOTOS:
            raise invalid_param("source_info.photo_images must list 1 to %d "
                                "image URLs" % MAX_PHOTOS)
        for url in images:
            self.check_pull_url(url, "photo_images")
        cover = source_info.get("photo_cover_index")
        if not is_int(cover) or not 0 <= cover < len(images):
            raise invalid_param("source_info.photo_cover_index must be an "
                                "index into photo_images")
        return source_info

    def check_post_info(self, post_info, user):
        if not isinstance(post_info, dict):
            raise invalid_param("post_info must be an object")
        privacy = post_info.get("privacy_level")
        if not isinstance(privacy, str) or not privacy:
            raise invalid_param("post_info.privacy_level is required")
        if privacy not in self.privacy_options(user):
            raise ApiError("privacy_level_option_mismatch",
                           "privacy_level %s is not among the creator's "
                           "privacy_level_options" % privacy)
        title = post_info.get("title", "")
        if not isinstance(title, str):
            raise invalid_param("post_info.title must be a string")
        if utf16_len(title) > MAX_TITLE_UTF16:
            raise invalid_param("post_info.title is longer than 2200 UTF-16 "
                                "code units")
        for name in ("disable_duet", "disable_stitch", "disable_comment",
                     "brand_content_toggle", "brand_organic_toggle",
                     "is_aigc"):
            if name in post_info and not isinstance(post_info[name], bool):
                raise invalid_param("post_info.%s must be a boolean" % name)
        if "brand_content_toggle" not in post_info:
            raise invalid_param("post_info.brand_content_toggle is required")
        if post_info["brand_content_toggle"] and privacy == "SELF_ONLY":
            raise invalid_param("branded content cannot be SELF_ONLY")
        ts = post_info.get("video_cover_timestamp_ms")
        if ts is not None and (not is_int(ts) or ts < 0):
            raise invalid_param("post_info.video_cover_timestamp_ms must be "
                                "an integer >= 0")
        return post_info

    def check_pull_url(self, url, name="video_url"):
        if not isinstance(url, str) or not url:
            raise invalid_param("source_info.%s is required" % name)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise invalid_param("%s must be an https URL" % name)
        try:
            ipaddress.ip_address(parts.hostname)
            raise invalid_param("%s host must be a domain, not an IP" % name)
        except ValueError:
            pass
        if not any(prefix_verified(url, parts.hostname, p)
                   for p in self.config["verified_prefixes"]):
            # quirk: seen with HTTP 200
            raise ApiError("url_ownership_unverified", "The domain or URL "
                           "prefix of %s is not verified for this "
                           "app" % name, status=200)

    def check_may_post(self, user):
        block = self.posting_block(user)
        if block:
            raise ApiError(block, "The creator cannot post now: " + block)
        if self.config["unaudited"]:
            if not user.private:
                raise ApiError(
                    "unaudited_client_can_only_post_to_private_accounts",
                    "Unaudited clients can only post to private accounts")
            posters = {oid for oid in self.post_times
                       if self.recent_posts(oid)}
            if user.open_id not in posters and len(posters) >= 5:
                raise ApiError("reached_active_user_cap", "The app reached "
                               "its daily cap of active posting users")

    def create_post(self, tok, user, source, post_info, source_info,
                    inbox=False, media="VIDEO"):
        kind = "file" if source == "FILE_UPLOAD" else "url"
        prefix = "p" if media == "PHOTO" else "v"
        how = "inbox" if inbox and media == "VIDEO" else "pub"
        publish_id = "%s_%s_%s~v2-1.%d" % (prefix, how, kind,
                                          next(self.publish_ids))
        assert len(publish_id) <= MAX_PUBLISH_ID
        post = Post(publish_id, user.open_id, tok.token, source,
                    copy.deepcopy(post_info), copy.deepcopy(source_info),
                    inbox, media)
        post.fail_reason = self.next_outcome(source)
        self.posts[publish_id] = post
        if not inbox:
            self.post_times[user.open_id].append(time.time())
        data = {"publish_id": publish_id}
        if source == "FILE_UPLOAD":
            upload_id = str(next(self.upload_ids))
            up = Upload(upload_id, secrets.token_urlsafe(24), publish_id,
                        source_info["video_size"], source_info["chunk_size"],
                        source_info["total_chunk_count"],
                        time.time() + self.config["upload_url_ttl"])
            self.uploads[upload_id] = up
            post.upload = up
            data["upload_url"] = \
                "https://%s:%d/upload/?upload_id=%s&upload_token=%s" % (
                    self.upload_host, self.port, upload_id, up.token)
        else:
            self.webhooks.media_ready(post)
        return data

    def next_outcome(self, source):
        for o in self.outcomes:
            if o["source"] in ("*", source):
                if o["count"]:
                    o["count"] -= 1
                    if o["count"] == 0:
                        self.outcomes.remove(o)
                return o["fail_reason"]
        return None

    def post_of(self, req, tok, error):
        body = self.json_object(req, error)
        publish_id = body.get("publish_id")
        if not isinstance(publish_id, str) or not publish_id:
            raise error("publish_id is required")
        post = self.posts.get(publish_id)
        if post is None:
            raise ApiError("invalid_publish_id", "publish_id does not exist")
        if post.open_id != tok.open_id:
            raise ApiError("token_not_authorized_for_specified_publish_id",
                           "The publish_id belongs to another user")
        return post

    def status_fetch(self, req, tok):
        post = self.post_of(req, tok, invalid_param)
        post.polls += 1
        self.advance(post)
        data = {"status": post.status}
        if post.source == "FILE_UPLOAD":
            data["uploaded_bytes"] = post.upload.bytes_received
        else:
            data["downloaded_bytes"] = post.downloaded_bytes
        if post.status == "FAILED":
            data["fail_reason"] = post.final_fail_reason
        if post.status == "PUBLISH_COMPLETE":
            # TikTok's spelling; int64 numbers above 2^53, written exactly
            data["publicaly_available_post_id"] = \
                [int(post.post_id)] if post.public else []
        return data

    def advance(self, post):
        """One status poll's worth of progress.  FILE_UPLOAD waits for all
        bytes; then (or from the start for PULL_FROM_URL) the next
        status_polls_to_complete polls still see PROCESSING_*, and the one
        after that sees the end: PUBLISH_COMPLETE or FAILED."""
        if post.status in ("PUBLISH_COMPLETE", "FAILED",
                           "SEND_TO_USER_INBOX"):
            return
        if post.upload is not None and not post.upload.complete:
            return
        if getattr(post, "timed", False):
            return      # webhooks on: processing ends on its own timer
        needed = self.config["status_polls_to_complete"]
        if post.ready_polls < needed:
            post.ready_polls += 1
            if post.source == "PULL_FROM_URL":
                post.downloaded_bytes = self.config["pull_video_size"] * \
                    post.ready_polls // (needed + 1)
            return
        if post.source == "PULL_FROM_URL":
            post.downloaded_bytes = self.config["pull_video_size"]
        reason = post.fail_reason
        if reason is None and post.upload is not None and \
                self.config["check_media_format"] and \
                not looks_like_video(post.upload.head):
            reason = "file_format_check_failed"
        if reason:
            post.status, post.final_fail_reason = "FAILED", reason
            return
        self.publish(post)

    def publish(self, post):
        if post.inbox:
            # the creator was notified; posting it is the creator's, later
            post.status = "SEND_TO_USER_INBOX"
            return
        post.status = "PUBLISH_COMPLETE"
        post.post_id = str(next(self.video_ids))
        user = self.users.get(post.open_id)
        if user is not None:
            title = post.post_info.get("title", "")
            user.add_video(Video(post.post_id, int(time.time() * 1000),
                                 title, title, public=post.public))

    def cancel(self, req, tok):
        post = self.post_of(req, tok, invalid_param)
        if post.status not in ("PUBLISH_COMPLETE", "FAILED"):
            post.status, post.final_fail_reason = "FAILED", \
                "publish_cancelled"
        return {}

    # ---- the upload host ----

    async def upload(self, req):
        fault = self.take_fault("/upload/")
        if fault is not None and not fault.after:
            if fault.type == "delay":
                await asyncio.sleep(fault.ms / 1000)
            else:
                await self.skip_body(req)
                return self.fault_response(req, fault, "/upload/")
        resp = await self.upload_chunk(req)
        if fault is not None and fault.after:   # the chunk is stored
            return self.fault_response(req, fault, "/upload/", resp)
        return resp

    async def upload_chunk(self, req):
        try:
            up = self.upload_task(req)
            length, first, last = self.chunk_headers(req, up)
            async with up.lock:
                return await self.receive_chunk(req, up, length, first, last)
        except ApiError as e:
            resp = self.api_error_response(req, e)
            if req.body.awaiting_continue:
                resp.close = True       # it never sent the body: don't wait
            else:
                await self.skip_body(req)
            return resp

    @staticmethod
    async def skip_body(req):
        if not req.body.awaiting_continue:
            await req.body.discard()

    def upload_task(self, req):
        if req.method != "PUT":
            raise ApiError("method_not_allowed", "chunks are PUT",
                           headers=[("Allow", "PUT")])
        if req.path != "/upload/":
            raise ApiError("not_found", "no upload task", status=404)
        up = self.uploads.get(req.query_first("upload_id") or "")
        if up is None:
            raise ApiError("not_found", "no upload task", status=404)
        if not hmac.compare_digest(req.query_first("upload_token") or "",
                                   up.token):
            raise ApiError("access_denied", "upload URL is invalid",
                           status=403)
        if time.time() >= up.expires_at:
            raise ApiError("access_denied", "upload URL expired", status=403)
        return up

    def chunk_headers(self, req, up):
        content_range = req.header("content-range")
        bad = None
        ctype, _ = media_type(req.header("content-type"))
        if ctype not in UPLOAD_TYPES:
            bad = "Content-Type must be one of " + ", ".join(UPLOAD_TYPES)
        elif req.body.chunked or req.header("content-length") is None:
            bad = "Content-Length is required"
        elif content_range is None:
            bad = "Content-Range is required"
        m = CONTENT_RANGE_RE.fullmatch(content_range or "")
        if bad is None and m is None:
            bad = "Content-Range must be bytes FIRST-LAST/TOTAL"
        if bad is None:
            first, last, total = map(int, m.groups())
            if last < first or last - first + 1 != req.body.length:
                bad = "Content-Range does not match Content-Length"
            elif total != up.video_size:
                bad = "Content-Range total is not video_size"
        if bad:
            up.ranges.append({"range": content_range, "status": 400})
            raise ApiError("invalid_params", bad, status=400)
        up.content_types.append(ctype)
        return req.body.length, first, last

    async def receive_chunk(self, req, up, length, first, last):
        entry = {"range": req.header("content-range"), "status": None}
        up.ranges.append(entry)
        if up.complete or first != up.bytes_received:
            entry["status"] = 416
            raise ApiError("range_not_satisfiable", "expected a chunk "
                           "starting at byte %d" % up.bytes_received
                           if not up.complete else "upload already complete",
                           status=416)
        expected = up.expected_chunk_size(up.chunks_received)
        if length != expected:
            entry["status"] = 400
            raise ApiError("invalid_params", "chunk %d must be %d bytes" % (
                up.chunks_received + 1, expected), status=400)
        # Hash into a copy: a chunk cut short must not count.
        sha, head, n = up.sha.copy(), up.head, 0
        async for data in req.body.pieces():
            sha.update(data)
            if len(head) < Upload.HEAD_BYTES:
                head += data[:Upload.HEAD_BYTES - len(head)]
            n += len(data)
        up.sha, up.head = sha, head
        up.bytes_received += n
        up.chunks_received += 1
        entry["status"] = 201 if up.complete else 206
        if up.complete:
            post = self.posts.get(up.publish_id)
            if post is not None:
                self.webhooks.media_ready(post)
        return Response(entry["status"], b"", headers=[
            ("Range", "bytes=0-%d" % (up.bytes_received - 1))])

    # ---- the sink: bench/scale's `curl -T` baseline ----

    async def sink(self, req):
        """Any PUT, of any size: hashed as it streams in, like a chunk,
        and never kept, so that a file sent here in one go measures what
        the upload host's own work costs without its chunk rules."""
        if req.method != "PUT":
            await self.skip_body(req)
            return Response(405, b"chunks are PUT\n", "text/plain",
                            headers=[("Allow", "PUT")])
        sha, n = hashlib.sha256(), 0
        async for data in req.body.pieces():
            sha.update(data)
            n += len(data)
        return json_response(201, {"bytes": n, "sha256": sha.hexdigest()})

    # ---- the CDN (cover and avatar images) ----

    def cdn(self, req):
        m = re.fullmatch(r"/cdn/(cover|avatar)/(.+)\.image", req.path)
        expires = req.query_first("x-expires") or ""
        if m is None or req.method != "GET" or not expires.isdigit():
            return Response(404, b"not found\n", "text/plain")
        want = hmac.new(self.cdn_key, ("%s/%s:%s" % (m.group(1), m.group(2),
                                                     expires)).encode(),
                        hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(req.query_first("x-signature") or "",
                                   want):
            return Response(403, b"bad signature\n", "text/plain")
        if int(expires) <= time.time():
            return Response(403, b"URL expired\n", "text/plain")
        rgb = hashlib.sha256(m.group(2).encode()).digest()[:3]
        size = (90, 160) if m.group(1) == "cover" else (64, 64)
        return Response(200, png_bytes(size[0], size[1], rgb), "image/png",
                        [("Cache-Control", "max-age=3600")])


VIDEO_SPEC = {"id": str, "create_time": int, "title": str,
              "video_description": str, "duration": int, "height": int,
              "width": int, "like_count": int, "comment_count": int,
              "share_count": int, "view_count": int, "public": bool}


def redirect(uri, params):
    location = uri + "?" + urllib.parse.urlencode(params,
                                                  quote_via=urllib.parse.quote)
    return Response(302, b"", "text/html; charset=UTF-8",
                    [("Location", location)])


def redirect_uri_problem(uri):
    """TikTok's rules for redirect URIs: absolute https, no query, no
    fragment, shorter than 512 characters."""
    if len(uri) >= 512:
        return "must be shorter than 512 characters"
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "https" or not parts.netloc:
        return "must be an absolute https URL"
    if parts.query or "?" in uri:
        return "must not have a query"
    if parts.fragment or "#" in uri:
        return "must not have a fragment"
    return None


def prefix_verified(url, host, prefix):
    """A verified URL prefix, or a bare domain (then the host or any
    subdomain of it)."""
    if "://" in prefix:
        return url.startswith(prefix)
    prefix = prefix.lower().rstrip(".")
    return host == prefix or host.endswith("." + prefix)


def chunk_plan_problem(video_size, chunk_size, total):
    """None when FILE_UPLOAD's numbers obey TikTok's chunk rules, else why
    not.  total_chunk_count = floor(video_size / chunk_size); chunks are
    5,242,880..64,000,000 bytes except the last (the remainder, < 128 MB);
    a single chunk has chunk_size == video_size and only for files up to
    64,000,000 bytes; 1..1000 chunks."""
    for name, v in (("video_size", video_size), ("chunk_size", chunk_size),
                    ("total_chunk_count", total)):
        if not is_int(v):
            return "source_info.%s must be an integer" % name
    if not 1 <= video_size <= MAX_VIDEO_BYTES:
        return "video_size must be 1..%d bytes" % MAX_VIDEO_BYTES
    if chunk_size == video_size and video_size <= MAX_SINGLE_CHUNK:
        expected = 1
    elif chunk_size < MIN_CHUNK:
        return "chunk_size must be at least %d bytes unless the video is " \
               "one chunk (chunk_size == video_size)" % MIN_CHUNK
    elif chunk_size > MAX_CHUNK:
        return "chunk_size must be at most %d bytes" % MAX_CHUNK
    else:
        expected = video_size // chunk_size
    if expected < 1:
        return "chunk_size is larger than video_size; one chunk needs " \
               "chunk_size == video_size"
    if expected == 1 and video_size > MAX_SINGLE_CHUNK:
        return "a video over %d bytes needs several chunks" % MAX_SINGLE_CHUNK
    if expected > MAX_CHUNKS:
        return "at most %d chunks" % MAX_CHUNKS
    if total != expected:
        return "total_chunk_count must be floor(video_size / chunk_size) = " \
               "%d" % expected
    return None


# --- the control API ---------------------------------------------------------

class Control:
    """Plain HTTP on 127.0.0.1; JSON in and out; errors {"error": "..."}."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.log = sandbox.log
        self.routes = [
            ("GET", r"/health", self.health),
            ("POST", r"/reset", self.reset),
            ("GET", r"/users", self.list_users),
            ("POST", r"/users", self.put_user),
            ("GET", r"/users/(.+)", self.get_user),
            ("POST", r"/authorize", self.script_authorize),
            ("DELETE", r"/authorize", self.clear_authorize),
            ("POST", r"/tokens", self.mint_tokens),
            ("POST", r"/tokens/expire", self.expire_tokens),
            ("POST", r"/tokens/revoke", self.revoke_tokens),
            ("GET", r"/config", self.get_config),
            ("POST", r"/config", self.set_config),
            ("GET", r"/faults", self.list_faults),
            ("POST", r"/faults", self.add_fault),
            ("DELETE", r"/faults", self.clear_faults),
            ("GET", r"/calls", self.get_calls),
            ("DELETE", r"/calls", self.clear_calls),
            ("GET", r"/requests", self.get_requests),
            ("GET", r"/uploads/(.+)", self.get_upload),
            ("GET", r"/posts", self.list_posts),
            ("GET", r"/posts/(.+)", self.get_post),
            ("POST", r"/posts/(.+)", self.script_post),
            ("POST", r"/outcomes", self.add_outcome),
            ("DELETE", r"/outcomes", self.clear_outcomes),
            ("GET", r"/webhooks", self.list_webhooks),
            ("DELETE", r"/webhooks", self.clear_webhooks),
            ("GET", r"/webhooks/config", self.get_webhook_config),
            ("POST", r"/webhooks/config", self.set_webhook_config),
            ("POST", r"/webhooks/send", self.send_webhook),
        ]

    async def handle(self, req):
        try:
            body = await req.body.read_all(MAX_CONTROL_BODY)
            status, obj = self.dispatch(req, body)
            if asyncio.iscoroutine(obj):
                obj = await obj
        except HttpError as e:
            status, obj = e.status, {"error": e.message}
        except ControlError as e:
            status, obj = e.status, {"error": e.message}
        except Exception:
            self.log.write("ERROR control " + traceback.format_exc()
                           .replace("\n", " | "))
            status, obj = 500, {"error": "sandbox bug, see its log"}
        self.log.write("ctl %s %s -> %d" % (req.method, req.path, status))
        return json_response(status, obj)

    def dispatch(self, req, raw):
        data = {}
        if raw.strip():
            try:
                data = parse_json(raw)
            except ValueError:
                raise ControlError(400, "body is not JSON")
        path_known = False
        for method, pattern, handler in self.routes:
            m = re.fullmatch(pattern, req.path)
            if m:
                path_known = True
                if method == req.method:
                    result = handler(req, data, *m.groups())
                    return (200, result) if not isinstance(result, tuple) \
                        else result
        raise ControlError(405 if path_known else 404,
                           "no such control endpoint")

    @staticmethod
    def obj(data):
        if not isinstance(data, dict):
            raise ControlError(400, "a JSON object is expected")
        return data

    def health(self, req, data):
        return {"ok": True, "port": self.sb.port,
                "control_port": self.sb.control_port, "pid": os.getpid()}

    def reset(self, req, data):
        self.sb.reset()
        return {"ok": True, "default_open_id": DEFAULT_OPEN_ID}

    def list_users(self, req, data):
        return {"users": sorted(self.sb.users)}

    def put_user(self, req, data):
        return self.sb.put_user(self.obj(data)).to_json()

    def get_user(self, req, data, open_id):
        user = self.sb.users.get(urllib.parse.unquote(open_id))
        if user is None:
            raise ControlError(404, "no such user")
        return user.to_json()

    def script_authorize(self, req, data):
        d = self.obj(data)
        script = {"deny": bool(d.get("deny", False)),
                  "count": d.get("count", 1)}
        if not is_int(script["count"]) or script["count"] < 0:
            raise ControlError(400, "count must be an integer >= 0")
        if "open_id" in d:
            if d["open_id"] not in self.sb.users:
                raise ControlError(400, "no such user: %s" % d["open_id"])
            script["open_id"] = d["open_id"]
        for key in ("grant_scopes", "error", "error_description"):
            if key in d:
                if not isinstance(d[key], str):
                    raise ControlError(400, key + " must be a string")
                script[key] = d[key]
        self.sb.auth_scripts.append(script)
        return {"scripts": self.sb.auth_scripts}

    def clear_authorize(self, req, data):
        self.sb.auth_scripts.clear()
        return {"scripts": []}

    def mint_tokens(self, req, data):
        d = self.obj(data)
        open_id = d.get("open_id", DEFAULT_OPEN_ID)
        if open_id not in self.sb.users:
            raise ControlError(400, "no such user: %s" % open_id)
        scope = d.get("scope", ",".join(SCOPES))
        scopes = scope.split(",") if isinstance(scope, str) else [None]
        if not all(s in SCOPES for s in scopes):
            raise ControlError(400, "scope must be comma-separated known "
                               "scopes")
        for key in ("expires_in", "refresh_expires_in"):
            if key in d and not is_int(d[key]):
                raise ControlError(400, key + " must be an integer")
        return self.sb.issue_tokens(open_id, scopes, d.get("expires_in"),
                                    d.get("refresh_expires_in"))

    def find_grants(self, d):
        """The tokens a control request names: access_token, refresh_token
        or open_id."""
        sb = self.sb
        if "access_token" in d:
            at = sb.access.get(d["access_token"])
            if at is None:
                raise ControlError(404, "no such access token")
            return [at], [at.grant]
        if "refresh_token" in d:
            grant = sb.refresh.get(d["refresh_token"])
            if grant is None:
                raise ControlError(404, "no such (current) refresh token")
            return [], [grant]
        if "open_id" in d:
            grants = [g for g in sb.grants if g.open_id == d["open_id"]]
            return [a for a in sb.access.values() if a.grant in grants], grants
        raise ControlError(400, "name access_token, refresh_token or open_id")

    def expire_tokens(self, req, data):
        d = self.obj(data)
        tokens, grants = self.find_grants(d)
        past = time.time() - 1
        for at in tokens:
            at.expires_at = past
        if "refresh_token" in d or "open_id" in d:
            for g in grants:
                g.refresh_expires_at = past
        return {"expired_access_tokens": len(tokens),
                "expired_refresh_tokens": len(grants)
                if "access_token" not in d else 0}

    def revoke_tokens(self, req, data):
        _, grants = self.find_grants(self.obj(data))
        for g in grants:
            self.sb.revoke_user(g.open_id)
        # the user removed the app in TikTok: reason 1
        for open_id in sorted({g.open_id for g in grants}):
            self.sb.webhooks.user_removed(open_id)
        return {"revoked": len(grants)}

    def get_config(self, req, data):
        return self.sb.config

    def set_config(self, req, data):
        d = self.obj(data)
        cfg = copy.deepcopy(self.sb.config)
        for key, value in d.items():
            if key not in DEFAULT_CONFIG:
                raise ControlError(400, "unknown config key: " + key)
            cfg[key] = self.check_config_value(key, value, cfg)
        self.sb.config = cfg
        return cfg

    @staticmethod
    def check_config_value(key, value, cfg):
        if key == "oauth_error_status":
            if value not in (200, 400):
                raise ControlError(400, "oauth_error_status must be 200 or "
                                   "400")
            return value
        if key == "verified_prefixes":
            if not isinstance(value, list) or \
                    not all(isinstance(p, str) and p for p in value):
                raise ControlError(400, "verified_prefixes must be a list of "
                                   "strings")
            return value
        if key in ("unaudited", "check_media_format"):
            if not isinstance(value, bool):
                raise ControlError(400, key + " must be a boolean")
            return value
        if key == "rate_limits":
            if not isinstance(value, dict) or not all(
                    is_int(v) and v >= 0 for v in value.values()):
                raise ControlError(400, "rate_limits must map paths to "
                                   "integers (0 = unlimited)")
            return dict(cfg["rate_limits"], **value)
        if not is_int(value):
            raise ControlError(400, key + " must be an integer")
        return value

    def list_faults(self, req, data):
        return {"faults": [f.to_json() for f in self.sb.faults]}

    def add_fault(self, req, data):
        specs = data if isinstance(data, list) else [self.obj(data)]
        faults = [Fault(self.obj(s)) for s in specs]
        self.sb.faults.extend(faults)
        return self.list_faults(req, data)

    def clear_faults(self, req, data):
        self.sb.faults.clear()
        return {"faults": []}

    def get_calls(self, req, data):
        return dict(self.sb.calls)

    def clear_calls(self, req, data):
        self.sb.calls.clear()
        return {}

    def get_requests(self, req, data):
        endpoint = req.query_first("endpoint")
        n = req.query_first("n") or "10"
        if not n.isdigit():
            raise ControlError(400, "n must be a number")
        items = self.sb.requests.get(endpoint, ()) if endpoint \
            else self.sb.all_requests
        return {"requests": list(items)[-int(n):] if int(n) else []}

    def get_upload(self, req, data, publish_id):
        post = self.sb.posts.get(urllib.parse.unquote(publish_id))
        if post is None or post.upload is None:
            raise ControlError(404, "no such FILE_UPLOAD publish_id")
        return post.upload.to_json()

    def list_posts(self, req, data):
        return {"posts": [p.to_json() for p in self.sb.posts.values()]}

    def post(self, publish_id):
        post = self.sb.posts.get(urllib.parse.unquote(publish_id))
        if post is None:
            raise ControlError(404, "no such publish_id")
        return post

    def get_post(self, req, data, publish_id):
        return self.post(publish_id).to_json()

    def script_post(self, req, data, publish_id):
        """{"fail_reason": R} makes this post end FAILED with R."""
        post = self.post(publish_id)
        reason = self.obj(data).get("fail_reason")
        if reason is not None and reason not in FAIL_REASONS:
            raise ControlError(400, "fail_reason must be one of "
                               + ", ".join(FAIL_REASONS))
        post.fail_reason = reason
        return post.to_json()

    def add_outcome(self, req, data):
        d = self.obj(data)
        outcome = {"fail_reason": d.get("fail_reason"),
                   "source": d.get("source", "*"),
                   "count": d.get("count", 1)}
        if outcome["fail_reason"] not in FAIL_REASONS:
            raise ControlError(400, "fail_reason must be one of "
                               + ", ".join(FAIL_REASONS))
        if outcome["source"] not in ("*", "FILE_UPLOAD", "PULL_FROM_URL"):
            raise ControlError(400, "source must be *, FILE_UPLOAD or "
                               "PULL_FROM_URL")
        if not is_int(outcome["count"]) or outcome["count"] < 0:
            raise ControlError(400, "count must be an integer >= 0")
        self.sb.outcomes.append(outcome)
        return {"outcomes": self.sb.outcomes}

    def clear_outcomes(self, req, data):
        self.sb.outcomes.clear()
        return {"outcomes": []}

    def list_webhooks(self, req, data):
        return {"deliveries": self.sb.webhooks.deliveries}

    def clear_webhooks(self, req, data):
        self.sb.webhooks.deliveries.clear()
        return {"deliveries": []}

    def get_webhook_config(self, req, data):
        return self.sb.webhooks.config

    def set_webhook_config(self, req, data):
        d = self.obj(data)
        cfg = dict(self.sb.webhooks.config)
        for key, value in d.items():
            if key not in WEBHOOK_DEFAULTS:
                raise ControlError(400, "unknown webhook config key: " + key)
            if type(value) is not type(WEBHOOK_DEFAULTS[key]) or \
                    (is_int(value) and value < 0):
                raise ControlError(400, "%s must be a %s" % (
                    key, type(WEBHOOK_DEFAULTS[key]).__name__))
            cfg[key] = value
        if cfg["url"] and not re.match(r"https?://[^/]+/", cfg["url"]):
            raise ControlError(400, "url must be an http(s) URL with a path")
        self.sb.webhooks.config = cfg
        return cfg

    def send_webhook(self, req, data):
        d = self.obj(data)
        for key in ("timestamp_offset", "duplicates", "pad"):
            if key in d and not is_int(d[key]):
                raise ControlError(400, key + " must be an integer")
        return self.sb.webhooks.send(d)


# --- start-up ----------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="TikTok v2 API sandbox")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-key", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--redirect-uri", action="append", required=True)
    p.add_argument("--ready-file")
    p.add_argument("--log")
    p.add_argument("--parent-pid", type=int,
                   help="exit when this process is no longer our parent")
    p.add_argument("--demo", action="store_true",
                   help="a consent page for a person, and DEMO_USER")
    args = p.parse_args(argv)
    for uri in args.redirect_uri:
        problem = redirect_uri_problem(uri)
        if problem:
            p.error("--redirect-uri %s %s" % (uri, problem))
    return args


def raise_fd_limit():
    """Hundreds of concurrent connections need file descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
        except (ValueError, OSError):
            pass


def write_ready(path, info):
    """Atomically: readers never see half a file."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(json.dumps(info) + "\n")
    os.replace(tmp, path)


async def watch_parent(parent_pid, stop):
    while not stop.is_set():
        if os.getppid() != parent_pid:
            stop.set()
            return
        await asyncio.sleep(1)


def quiet_exception_handler(log):
    """TLS handshakes that clients abort (e.g. a client that does not trust
    our CA) are expected in tests; log them in one line, not a traceback."""
    def handler(loop, context):
        exc = context.get("exception")
        log.write("loop: %s %s" % (context.get("message"),
                                   repr(exc) if exc else ""))
    return handler


async def main(argv):
    args = parse_args(argv)
    raise_fd_limit()
    log = LineLog(args.log)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_exception_handler(log))

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    tls.set_alpn_protocols(["http/1.1"])

    sandbox = Sandbox(args, log)
    api = HttpServer(sandbox)
    control = HttpServer(Control(sandbox))
    api_server = await asyncio.start_server(
        api.serve, args.listen, args.port, ssl=tls, backlog=4096,
        limit=READ_PIECE)
    control_server = await asyncio.start_server(
        control.serve, "127.0.0.1", args.control_port, backlog=256,
        limit=MAX_HEAD)
    sandbox.port = api_server.sockets[0].getsockname()[1]
    sandbox.control_port = control_server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.parent_pid:
        loop.create_task(watch_parent(args.parent_pid, stop))

    info = {"port": sandbox.port, "control_port": sandbox.control_port,
            "pid": os.getpid()}
    if args.ready_file:
        write_ready(args.ready_file, info)
    print(json.dumps(info), flush=True)
    log.write("listening: API https://%s:%d control http://127.0.0.1:%d" % (
        args.listen, sandbox.port, sandbox.control_port))

    await stop.wait()
    log.write("stopping")
    for server, conns in ((api_server, api), (control_server, control)):
        server.close()
        conns.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
