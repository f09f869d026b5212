#!/usr/bin/env python3
"""Writes sessions.json: session-string vectors in the layouts the Python libraries use.

Telethon (telethon/sessions/string.py):
    '1' + urlsafe_b64encode(pack('>B{4|16}sH256s', dc_id, ip, port, key))   (padded)
Pyrogram (pyrogram/storage/storage.py), urlsafe_b64encode(...).rstrip('='):
    '>B?256sI?'   old layout, 32-bit user id        (351 chars)
    '>B?256sQ?'   old layout, 64-bit user id        (356 chars)
    '>BI?256sQ?'  current layout, with the api id   (362 chars)

The keys are synthetic (a counter, never a real account's). Run from this directory:
    python3 make_sessions.py > sessions.json
"""
import base64
import hashlib
import ipaddress
import json
import struct


def key(seed):
    return bytes((i * 7 + seed) % 256 for i in range(256))


def auth_key_id(k):
    # Telegram's auth_key_id: the low 64 bits of SHA-1(key), little-endian.
    return "%016x" % struct.unpack("<Q", hashlib.sha1(k).digest()[12:20])[0]


def telethon(dc, ip, port, k):
    packed = ipaddress.ip_address(ip).packed
    raw = struct.pack(">B{}sH256s".format(len(packed)), dc, packed, port, k)
    return "1" + base64.urlsafe_b64encode(raw).decode("ascii")


def pyrogram(fmt, *fields):
    return base64.urlsafe_b64encode(struct.pack(fmt, *fields)).decode("ascii").rstrip("=")


def valid():
    out = []
    k = key(11)
    s = telethon(2, "149.154.167.51", 443, k)
    out.append(dict(name="telethon ipv4", format="telethon-ipv4", string=s, dc_id=2,
                    address="149.154.167.51:443", user_id=None, api_id=None))
    k6 = key(12)
    s = telethon(4, "2001:67c:4e8:f004::a", 443, k6)
    out.append(dict(name="telethon ipv6", format="telethon-ipv6", string=s, dc_id=4,
                    address="[2001:67c:4e8:f004::a]:443", user_id=None, api_id=None))
    out[-1]["key"] = k6
    k1 = key(13)
    s = pyrogram(">B?256sI?", 1, False, k1, 123456789, False)
    out.append(dict(name="pyrogram old", format="pyrogram-v1", string=s, dc_id=1,
                    address=None, user_id=123456789, api_id=None, key=k1))
    k2 = key(14)
    s = pyrogram(">B?256sQ?", 5, False, k2, 6000000001, False)
    out.append(dict(name="pyrogram old 64", format="pyrogram-v1-64", string=s, dc_id=5,
                    address=None, user_id=6000000001, api_id=None, key=k2))
    k3 = key(15)
    s = pyrogram(">BI?256sQ?", 3, 2040, False, k3, 7000000002, False)
    out.append(dict(name="pyrogram current", format="pyrogram-v2", string=s, dc_id=3,
                    address=None, user_id=7000000002, api_id=2040, key=k3))
    out[0]["key"] = k
    for v in out:
        kk = v.pop("key")
        v["key_hex"] = kk.hex()
        v["auth_key_id"] = auth_key_id(kk)
        v["chars"] = len(v["string"])
    return out


def invalid():
    k = key(21)
    tele = telethon(2, "149.154.167.51", 443, k)
    pyro = pyrogram(">BI?256sQ?", 2, 2040, False, k, 42, False)
    cases = [
        ("empty", "", "Empty"),
        ("telethon truncated", tele[:300], "UnknownFormat"),
        ("telethon ipv6 one char short",
         telethon(4, "2001:67c:4e8:f004::a", 443, k)[:367], "UnknownFormat"),
        ("telethon one char long", tele + "A", "UnknownFormat"),
        ("pyrogram truncated", pyro[:361], "UnknownFormat"),
        ("pyrogram extended", pyro + "AA", "UnknownFormat"),
        ("telethon bad character", tele[:50] + "!" + tele[51:], "BadBase64"),
        ("telethon standard alphabet", tele[:50] + "+" + tele[51:], "BadBase64"),
        ("pyrogram bad character", pyro[:100] + "*" + pyro[101:], "BadBase64"),
        # 351 chars: a non-canonical last character (its unused bits are not zero).
        ("pyrogram bad last character",
         pyrogram(">B?256sI?", 1, False, k, 7, False)[:-1] + "B", "BadBase64"),
        ("telethon version 2", "2" + tele[1:], "UnknownFormat"),
        ("telethon test server", telethon(2, "149.154.167.40", 80, k), "TestServer"),
        ("telethon dc 0", telethon(0, "149.154.167.51", 443, k), "InvalidDc"),
        ("telethon dc 7", telethon(7, "149.154.167.51", 443, k), "InvalidDc"),
        ("telethon no key", telethon(2, "149.154.167.51", 443, bytes(256)), "MissingKey"),
        ("telethon port 0", telethon(2, "149.154.167.51", 0, k), "BadAddress"),
        ("pyrogram old bot", pyrogram(">B?256sI?", 2, False, k, 42, True), "Bot"),
        ("pyrogram old test mode", pyrogram(">B?256sI?", 2, True, k, 42, False), "TestServer"),
        ("pyrogram 64 bot", pyrogram(">B?256sQ?", 2, False, k, 42, True), "Bot"),
        ("pyrogram current bot", pyrogram(">BI?256sQ?", 2, 2040, False, k, 42, True), "Bot"),
        ("pyrogram current test mode",
         pyrogram(">BI?256sQ?", 2, 2040, True, k, 42, False), "TestServer"),
        ("pyrogram bad flag",
         base64.urlsafe_b64encode(struct.pack(">BIB256sQB", 2, 2040, 7, k, 42, 0))
         .decode("ascii").rstrip("="), "BadFlag"),
        ("pyrogram dc 9", pyrogram(">BI?256sQ?", 9, 2040, False, k, 42, False), "InvalidDc"),
    ]
    return [dict(name=n, string=s, error=e) for n, s, e in cases]


if __name__ == "__main__":
    print(json.dumps({"valid": valid(), "invalid": invalid()}, indent=1))
