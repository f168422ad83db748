/** HTTP/1.x request heads: each form, each refusal, partial input, the limits, the head sent upstream. */
import assert from "node:assert/strict";
import {
  type HeadResult,
  MAX_HEAD_BYTES,
  MAX_HEADERS,
  MAX_REQUEST_LINE,
  originFormHead,
  readRequestHead,
  redactQuery,
  type RequestHead,
} from "../../lib/net/http_head.ts";

/** One byte per character, as on the wire (`\xe9` is the byte 0xE9). */
function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => {
    const code = c.charCodeAt(0);
    if (code > 0xff) throw new RangeError(`not a byte: ${c}`);
    return code;
  });
}

const text = (b: Uint8Array) => String.fromCharCode(...b);

function read(s: string): HeadResult {
  return readRequestHead(bytes(s));
}

function headOf(s: string): RequestHead {
  const r = read(s);
  assert.equal(r.kind, "head", `${JSON.stringify(s)}: ${JSON.stringify(r)}`);
  return (r as { head: RequestHead }).head;
}

Deno.test("readRequestHead: each target form, with what the policy decides on", () => {
  const cases: Array<[string, string, Omit<RequestHead, "target" | "headers">]> = [
    [
      "origin-form with a query: the path without it, no port from a Host without one",
      "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.COM\r\n\r\n",
      { method: "GET", form: "origin", version: "1.1", host: "example.com", port: undefined, path: "/a/b" },
    ],
    [
      "origin-form, a Host with a port",
      "POST /up HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 3\r\n\r\n",
      { method: "POST", form: "origin", version: "1.1", host: "example.com", port: 8080, path: "/up" },
    ],
    [
      "origin-form, a Host that is an IPv4 address",
      "GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n",
      { method: "GET", form: "origin", version: "1.1", host: "10.0.0.1", port: 80, path: "/" },
    ],
    [
      "origin-form, a Host with a trailing dot and an underscore",
      "GET / HTTP/1.1\r\nHost: _x.example.com.\r\n\r\n",
      { method: "GET", form: "origin", version: "1.1", host: "_x.example.com.", port: undefined, path: "/" },
    ],
    [
      "origin-form in HTTP/1.0 without a Host",
      "GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n",
      { method: "GET", form: "origin", version: "1.0", host: undefined, port: undefined, path: "/old" },
    ],
    [
      "origin-form in HTTP/1.0 with an empty Host",
      "GET /old HTTP/1.0\r\nHost:\r\n\r\n",
      { method: "GET", form: "origin", version: "1.0", host: undefined, port: undefined, path: "/old" },
    ],
    [
      "absolute-form: port 80 when the URL gives none, a Host that agrees",
      "GET http://Example.com/a/b?q HTTP/1.1\r\nHost: example.com\r\nProxy-Connection: keep-alive\r\n\r\n",
      { method: "GET", form: "absolute", version: "1.1", host: "example.com", port: 80, path: "/a/b" },
    ],
    [
      "absolute-form: a Host with the default port agrees with a URL without one",
      "GET HTTP://example.com/ HTTP/1.1\r\nHost: example.com:80\r\n\r\n",
      { method: "GET", form: "absolute", version: "1.1", host: "example.com", port: 80, path: "/" },
    ],
    [
      "absolute-form with a port and no Host",
      "PUT http://example.com:8080/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
      { method: "PUT", form: "absolute", version: "1.1", host: "example.com", port: 8080, path: "/x" },
    ],
    [
      "absolute-form without a path: /",
      "GET http://example.com HTTP/1.0\r\n\r\n",
      { method: "GET", form: "absolute", version: "1.0", host: "example.com", port: 80, path: "/" },
    ],
    [
      "absolute-form with a query and no path: /",
      "GET http://example.com?a=b HTTP/1.1\r\n\r\n",
      { method: "GET", form: "absolute", version: "1.1", host: "example.com", port: 80, path: "/" },
    ],
    [
      "absolute-form OPTIONS without a path: *",
      "OPTIONS http://example.com HTTP/1.1\r\n\r\n",
      { method: "OPTIONS", form: "absolute", version: "1.1", host: "example.com", port: 80, path: "*" },
    ],
    [
      "absolute-form with an IPv6 literal: the host without brackets",
      "GET http://[2001:DB8::1]:8080/ HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
      { method: "GET", form: "absolute", version: "1.1", host: "2001:db8::1", port: 8080, path: "/" },
    ],
    [
      "authority-form (CONNECT) with a Host that agrees",
      "CONNECT Example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl\r\n\r\n",
      { method: "CONNECT", form: "authority", version: "1.1", host: "example.com", port: 443, path: "" },
    ],
    [
      "CONNECT with a Host without a port",
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
      { method: "CONNECT", form: "authority", version: "1.1", host: "example.com", port: 443, path: "" },
    ],
    [
      "CONNECT in HTTP/1.0 to an IPv4 address, no Host, Content-Length: 0",
      "CONNECT 93.184.216.34:8443 HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
      { method: "CONNECT", form: "authority", version: "1.0", host: "93.184.216.34", port: 8443, path: "" },
    ],
    [
      "CONNECT to an IPv6 literal, IPv4 in its last 32 bits",
      "CONNECT [::ffff:1.2.3.4]:443 HTTP/1.1\r\n\r\n",
      { method: "CONNECT", form: "authority", version: "1.1", host: "::ffff:1.2.3.4", port: 443, path: "" },
    ],
    [
      "CONNECT with a Content-Length of zero written 00",
      "CONNECT a:443 HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
      { method: "CONNECT", form: "authority", version: "1.1", host: "a", port: 443, path: "" },
    ],
    [
      "asterisk-form",
      "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
      {
        method: "OPTIONS",
        form: "asterisk",
        version: "1.1",
        host: "example.com",
        port: undefined,
        path: "*",
      },
    ],
    [
      "a method that is any token, case kept",
      "get /x HTTP/1.1\r\nHost: a\r\n\r\n",
      { method: "get", form: "origin", version: "1.1", host: "a", port: undefined, path: "/x" },
    ],
    [
      "the same Content-Length twice, and as a list",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5 , 5\r\n\r\n",
      { method: "POST", form: "origin", version: "1.1", host: "a", port: undefined, path: "/" },
    ],
    [
      "Transfer-Encoding ending in chunked, over two fields",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
      { method: "POST", form: "origin", version: "1.1", host: "a", port: undefined, path: "/" },
    ],
  ];
  for (const [name, s, expected] of cases) {
    const r = read(s);
    assert.equal(r.kind, "head", `${name}: ${JSON.stringify(r)}`);
    const { head, size } = r as { head: RequestHead; size: number };
    assert.equal(size, s.length, name);
    const { target: _t, headers: _h, ...rest } = head;
    assert.deepEqual(rest, expected, name);
    assert.equal(head.target, s.split(" ")[1], name);
  }
});

Deno.test("readRequestHead: header fields in order, names as sent, values trimmed, obs-text kept", () => {
  const head = headOf(
    "GET / HTTP/1.1\r\nHost:  a \r\nX-Tabs:\t\t v  w \t\r\nx-EMPTY:\r\nX-Only-Space:   \r\n" +
      "X-Latin: caf\xe9\r\nX-Colons: a:b: c\r\n\r\n",
  );
  assert.deepEqual(head.headers, [
    ["Host", "a"],
    ["X-Tabs", "v  w"],
    ["x-EMPTY", ""],
    ["X-Only-Space", ""],
    ["X-Latin", "café"],
    ["X-Colons", "a:b: c"],
  ]);
});

Deno.test("readRequestHead refuses, with its status and reason", () => {
  const h = "GET / HTTP/1.1\r\n";
  const cases: Array<[string, string, number, RegExp]> = [
    // Line endings.
    ["a bare LF ending the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, /bare LF/],
    ["bare LFs only (refused before any CRLFCRLF)", "GET / HTTP/1.1\nHost: a\n", 400, /bare LF/],
    ["a bare LF ending a header line", h + "Host: a\n\r\n", 400, /bare LF/],
    ["an LF first", "\n", 400, /bare LF/],
    ["a CR in a header value", h + "Host: a\rb\r\n\r\n", 400, /CR not followed by LF/],
    ["a CR in the request line", "GET /\r HTTP/1.1\r\n\r\n", 400, /CR not followed by LF/],
    ["an empty line before the request line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, /empty line/],
    ["nothing but the end of a head", "\r\n\r\n", 400, /empty line/],
    // The request line.
    ["two spaces after the method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, /one space apart/],
    ["a tab between the parts", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, /one space apart/],
    ["a space after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, /one space apart/],
    ["no version (HTTP/0.9)", "GET /\r\n\r\n", 400, /one space apart/],
    ["a space in the target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, /one space apart/],
    ["a method that is not a token", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, /method/],
    ["an empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400, /method/],
    ["a fragment in the target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400, /fragment/],
    [
      "a byte over 0x7f in the target",
      "GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n",
      400,
      /target with a character/,
    ],
    [
      "a control character in the target",
      "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
      400,
      /target with a character/,
    ],
    ["a lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, /HTTP version/],
    ["a version without its dot", "GET / HTTP/11\r\nHost: a\r\n\r\n", 400, /HTTP version/],
    ["HTTP/2's preface", "PRI * HTTP/2.0\r\n\r\n", 505, /version/],
    ["HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, /version/],
    ["HTTP/0.9 by its version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, /version/],
    // Header lines.
    ["a folded line (space)", h + "Host: a\r\nX-A: b\r\n c\r\n\r\n", 400, /obs-fold/],
    ["a folded line (tab)", h + "Host: a\r\nX-A: b\r\n\tc\r\n\r\n", 400, /obs-fold/],
    ["a first header line folded", h + " Host: a\r\n\r\n", 400, /obs-fold/],
    ["a header line without a colon", h + "Host: a\r\nX-A\r\n\r\n", 400, /without a colon/],
    ["an empty header name", h + "Host: a\r\n: b\r\n\r\n", 400, /no name/],
    ["a space before the colon", h + "Host : a\r\n\r\n", 400, /whitespace before/],
    ["a tab before the colon", h + "Host: a\r\nX-A\t: b\r\n\r\n", 400, /whitespace before/],
    ["a space inside a name", h + "Host: a\r\nX A: b\r\n\r\n", 400, /header name/],
    ["a parenthesis in a name", h + "Host: a\r\nX(A): b\r\n\r\n", 400, /header name/],
    ["a byte over 0x7f in a name", h + "Host: a\r\nX\xe9: b\r\n\r\n", 400, /header name/],
    ["a NUL in a value", h + "Host: a\r\nX-A: b\x00c\r\n\r\n", 400, /control character in a X-A header/],
    ["an escape in a value", h + "Host: a\r\nX-A: \x1b[31m\r\n\r\n", 400, /control character/],
    ["a unit separator (0x1f) in a value", h + "Host: a\r\nX-A: b\x1fc\r\n\r\n", 400, /control character/],
    ["a DEL in a value", h + "Host: a\r\nX-A: b\x7f\r\n\r\n", 400, /control character/],
    // Host.
    ["two Host headers, the same", h + "Host: a\r\nHost: a\r\n\r\n", 400, /more than one Host/],
    ["two Host headers, cases differing", h + "Host: a\r\nhOST: b\r\n\r\n", 400, /more than one Host/],
    ["no Host in HTTP/1.1", h + "X-A: b\r\n\r\n", 400, /no Host/],
    ["an empty Host in HTTP/1.1", h + "Host: \r\n\r\n", 400, /empty Host/],
    ["no Host in HTTP/1.1, asterisk-form", "OPTIONS * HTTP/1.1\r\n\r\n", 400, /no Host/],
    ["a space inside a Host", h + "Host: a b\r\n\r\n", 400, /neither a name nor/],
    ["a percent-encoded Host", h + "Host: %61\r\n\r\n", 400, /neither a name nor/],
    ["an empty label in a Host", h + "Host: a..b\r\n\r\n", 400, /neither a name nor/],
    ["a Host that is a port only", h + "Host: :80\r\n\r\n", 400, /neither a name nor/],
    ["a Host with user information", h + "Host: u@a\r\n\r\n", 400, /user information/],
    ["a Host with two colons", h + "Host: a:1:2\r\n\r\n", 400, /port/],
    ["a Host with an empty port", h + "Host: a:\r\n\r\n", 400, /port/],
    ["a Host with port 0", h + "Host: a:0\r\n\r\n", 400, /port/],
    ["a Host with port 65536", h + "Host: a:65536\r\n\r\n", 400, /port/],
    ["a Host with a signed port", h + "Host: a:+80\r\n\r\n", 400, /port/],
    ["a shortened IPv4 address", h + "Host: 127.1\r\n\r\n", 400, /neither a name nor/],
    ["a hexadecimal IPv4 address", h + "Host: 0x7f.0.0.1\r\n\r\n", 400, /neither a name nor/],
    ["a name ending in a hex number", h + "Host: a.0x7f\r\n\r\n", 400, /neither a name nor/],
    ["an IPv4 address with a leading zero", h + "Host: 10.0.0.01\r\n\r\n", 400, /neither a name nor/],
    ["an IPv4 address with a part over 255", h + "Host: 10.0.0.256\r\n\r\n", 400, /neither a name nor/],
    ["an IPv4 address with a trailing dot", h + "Host: 10.0.0.1.\r\n\r\n", 400, /neither a name nor/],
    ["an unclosed IPv6 literal", h + "Host: [::1\r\n\r\n", 400, /unclosed/],
    ["an IPv4 address in brackets", h + "Host: [1.2.3.4]\r\n\r\n", 400, /not an IPv6/],
    ["IPvFuture", h + "Host: [v1.x]\r\n\r\n", 400, /not an IPv6/],
    ["an IPv6 zone", h + "Host: [fe80::1%25eth0]\r\n\r\n", 400, /not an IPv6/],
    ["two ::", h + "Host: [1::2::3]\r\n\r\n", 400, /not an IPv6/],
    ["two :: and eight groups", h + "Host: [1:2::3:4::5:6:7:8]\r\n\r\n", 400, /not an IPv6/],
    ["eight groups and ::", h + "Host: [1::2:3:4:5:6:7:8]\r\n\r\n", 400, /not an IPv6/],
    ["an IPv4 tail that is not one", h + "Host: [::1.2.3.256]\r\n\r\n", 400, /not an IPv6/],
    ["nine groups", h + "Host: [1:2:3:4:5:6:7:8:9]\r\n\r\n", 400, /not an IPv6/],
    ["seven groups without ::", h + "Host: [1:2:3:4:5:6:7]\r\n\r\n", 400, /not an IPv6/],
    ["a group of five digits", h + "Host: [12345::]\r\n\r\n", 400, /not an IPv6/],
    ["something after an IPv6 literal", h + "Host: [::1]x\r\n\r\n", 400, /after the IP literal/],
    // Content-Length and Transfer-Encoding.
    [
      "both Content-Length and Transfer-Encoding",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
      /both Content-Length and Transfer-Encoding/,
    ],
    [
      "two Content-Lengths that differ",
      h + "Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      400,
      /differ/,
    ],
    ["a Content-Length list that differs", h + "Host: a\r\nContent-Length: 5, 6\r\n\r\n", 400, /differ/],
    ["Content-Lengths differing by a zero", h + "Host: a\r\nContent-Length: 5, 05\r\n\r\n", 400, /differ/],
    ["a signed Content-Length", h + "Host: a\r\nContent-Length: +5\r\n\r\n", 400, /not a number/],
    ["a Content-Length with a letter", h + "Host: a\r\nContent-Length: 5a\r\n\r\n", 400, /not a number/],
    ["an empty Content-Length", h + "Host: a\r\nContent-Length:\r\n\r\n", 400, /not a number/],
    [
      "an empty item in a Content-Length list",
      h + "Host: a\r\nContent-Length: 5,\r\n\r\n",
      400,
      /not a number/,
    ],
    [
      "Transfer-Encoding in HTTP/1.0",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
      /HTTP\/1.0/,
    ],
    ["a Transfer-Encoding without chunked", h + "Host: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, /chunked/],
    [
      "chunked, then another coding",
      h + "Host: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      400,
      /chunked/,
    ],
    [
      "chunked twice",
      h + "Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
      /chunked/,
    ],
    ["an empty Transfer-Encoding", h + "Host: a\r\nTransfer-Encoding: ,\r\n\r\n", 400, /chunked/],
    // Target forms.
    ["an asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, /asterisk/],
    ["host:port for GET", "GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400, /none of HTTP's forms/],
    ["a relative path", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400, /none of HTTP's forms/],
    ["http: without //", "GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n", 400, /none of HTTP's forms/],
    ["https absolute-form", "GET https://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 501, /scheme other than http/],
    ["ftp absolute-form", "GET ftp://a/ HTTP/1.1\r\n\r\n", 501, /scheme other than http/],
    ["an absolute-form target with no host", "GET http:///a HTTP/1.1\r\n\r\n", 400, /neither a name nor/],
    ["user information in the URL", "GET http://u:p@a/ HTTP/1.1\r\n\r\n", 400, /user information/],
    ["a URL with an empty port", "GET http://a:/ HTTP/1.1\r\n\r\n", 400, /port/],
    ["a Host that names another host", "GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", 400, /disagrees/],
    ["a Host with another port", "GET http://a/ HTTP/1.1\r\nHost: a:81\r\n\r\n", 400, /disagrees/],
    ["a Host without the URL's port", "GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, /disagrees/],
    ["an empty Host with absolute-form", "GET http://a/ HTTP/1.1\r\nHost:\r\n\r\n", 400, /disagrees/],
    ["a bad Host with absolute-form", "GET http://a/ HTTP/1.1\r\nHost: a:x\r\n\r\n", 400, /port/],
    ["CONNECT without a port", "CONNECT example.com HTTP/1.1\r\n\r\n", 400, /without a port/],
    ["CONNECT to a path", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, /neither a name nor/],
    ["CONNECT to a URL", "CONNECT http://a:80/ HTTP/1.1\r\n\r\n", 400, /port/],
    ["CONNECT to port 0", "CONNECT a:0 HTTP/1.1\r\n\r\n", 400, /port/],
    [
      "CONNECT with a Host naming another host",
      "CONNECT a:443 HTTP/1.1\r\nHost: b:443\r\n\r\n",
      400,
      /disagrees/,
    ],
    [
      "CONNECT with a Host naming another port",
      "CONNECT a:443 HTTP/1.1\r\nHost: a:80\r\n\r\n",
      400,
      /disagrees/,
    ],
    ["CONNECT with content", "CONNECT a:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 400, /with content/],
    ["CONNECT chunked", "CONNECT a:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, /with content/],
  ];
  for (const [name, s, status, reason] of cases) {
    const r = read(s);
    assert.equal(r.kind, "bad", `${name}: ${JSON.stringify(r)}`);
    const bad = r as { status: number; reason: string };
    assert.equal(bad.status, status, `${name}: ${bad.reason}`);
    assert.match(bad.reason, reason, name);
    // A reason never quotes the refused bytes: printable ASCII only.
    assert.match(bad.reason, /^[ -~]+$/, name);
  }
});

Deno.test("readRequestHead asks for more until the head is complete, and its size leaves the rest", () => {
  const heads = [
    "GET /a?b HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "POST http://example.com/x HTTP/1.1\r\nContent-Length: 4\r\nX-A:\tb\r\n\r\n",
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "OPTIONS * HTTP/1.0\r\n\r\n",
  ];
  const after = "\x16\x03\x01\r\n\r\nbody\n";
  for (const head of heads) {
    const all = bytes(head + after);
    for (let n = 0; n < head.length; n++) {
      assert.deepEqual(
        readRequestHead(all.subarray(0, n)),
        { kind: "more" },
        `${n} bytes of ${JSON.stringify(head)}`,
      );
    }
    for (let n = head.length; n <= all.byteLength; n++) {
      const r = readRequestHead(all.subarray(0, n));
      assert.equal(r.kind, "head", `${n} bytes of ${JSON.stringify(head)}`);
      assert.equal((r as { size: number }).size, head.length);
    }
  }
  // A subarray that does not start at its buffer's start reads the same.
  const offset = bytes("xxxx" + heads[0]!).subarray(4);
  assert.equal((readRequestHead(offset) as { size: number }).size, heads[0]!.length);
});

Deno.test("the limits: exactly at each is taken, one over is refused, without waiting for the end", () => {
  const line = "GET / HTTP/1.1\r\nHost: a\r\n";
  // A head of exactly `size` bytes: one X-Pad header filling it out.
  const headOfSize = (size: number) => {
    const padding = size - line.length - "X-Pad: ".length - "\r\n\r\n".length;
    return line + "X-Pad: " + "p".repeat(padding) + "\r\n\r\n";
  };
  const atLimit = headOfSize(MAX_HEAD_BYTES);
  assert.equal(atLimit.length, MAX_HEAD_BYTES);
  assert.deepEqual((read(atLimit + "body") as { size: number }).size, MAX_HEAD_BYTES);
  assert.deepEqual(read(headOfSize(MAX_HEAD_BYTES + 1)), {
    kind: "bad",
    status: 431,
    reason: `a head over ${MAX_HEAD_BYTES} bytes`,
  });
  // Without an end: one byte short of the limit may still end in time; at the limit it cannot.
  const unended = atLimit.slice(0, -4) + "pppp";
  assert.deepEqual(read(unended.slice(0, MAX_HEAD_BYTES - 1)), { kind: "more" });
  assert.equal((read(unended) as { status: number }).status, 431);
  // The end just past the limit: the last CR inside it, its LF one over.
  assert.equal((read(headOfSize(MAX_HEAD_BYTES + 1) + "more") as { status: number }).status, 431);

  const withFields = (n: number) =>
    "GET / HTTP/1.1\r\nHost: a\r\n" + Array.from({ length: n - 1 }, (_, i) => `X-${i}: v\r\n`).join("");
  assert.equal(headOf(withFields(MAX_HEADERS) + "\r\n").headers.length, MAX_HEADERS);
  assert.deepEqual(read(withFields(MAX_HEADERS + 1) + "\r\n"), {
    kind: "bad",
    status: 431,
    reason: `more than ${MAX_HEADERS} header fields`,
  });
  // Refused as the field over the count ends, before the head does.
  assert.equal((read(withFields(MAX_HEADERS + 1)) as { status: number }).status, 431);
  assert.deepEqual(read(withFields(MAX_HEADERS)), { kind: "more" });

  const requestLine = (length: number) =>
    "GET /" + "a".repeat(length - "GET / HTTP/1.1".length) + " HTTP/1.1";
  assert.equal(requestLine(MAX_REQUEST_LINE).length, MAX_REQUEST_LINE);
  assert.equal(headOf(requestLine(MAX_REQUEST_LINE) + "\r\nHost: a\r\n\r\n").method, "GET");
  assert.deepEqual(read(requestLine(MAX_REQUEST_LINE + 1) + "\r\nHost: a\r\n\r\n"), {
    kind: "bad",
    status: 414,
    reason: `a request line over ${MAX_REQUEST_LINE} bytes`,
  });
  // Without its end: refused once the line is one byte over, not before.
  assert.deepEqual(read(requestLine(MAX_REQUEST_LINE + 1).slice(0, MAX_REQUEST_LINE)), { kind: "more" });
  assert.equal(
    (read(requestLine(MAX_REQUEST_LINE + 1).slice(0, MAX_REQUEST_LINE + 1)) as { status: number }).status,
    414,
  );
});

Deno.test("originFormHead: what goes upstream, byte for byte", () => {
  const cases: Array<[string, string, string]> = [
    [
      "the two proxy headers dropped (any case), the rest as sent, Host kept where it was, the body left out",
      "POST http://Example.com/a/b?x=1&y HTTP/1.1\r\nUser-Agent: t\r\nPROXY-CONNECTION: keep-alive\r\n" +
      "Host: example.com\r\nproxy-authorization: Basic eDp5\r\nX-Odd:   spaced \t\r\nX-Latin: caf\xe9\r\n" +
      "Proxy-Connection-X: kept\r\nProxy-Other: kept\r\nContent-Length: 4\r\n\r\nbody",
      "POST /a/b?x=1&y HTTP/1.1\r\nUser-Agent: t\r\nHost: example.com\r\nX-Odd:   spaced \t\r\n" +
      "X-Latin: caf\xe9\r\nProxy-Connection-X: kept\r\nProxy-Other: kept\r\nContent-Length: 4\r\n\r\n",
    ],
    [
      "no Host: one added after the request line, the authority as the target has it",
      "GET http://Example.com:8080/x HTTP/1.1\r\nAccept: */*\r\n\r\n",
      "GET /x HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\n\r\n",
    ],
    [
      "an empty path: /, HTTP/1.0 kept",
      "GET http://a HTTP/1.0\r\nProxy-Connection: close\r\n\r\n",
      "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
    ],
    [
      "a query without a path",
      "GET http://a?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    [
      "OPTIONS without a path: asterisk-form",
      "OPTIONS http://a:80 HTTP/1.1\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: a:80\r\n\r\n",
    ],
    [
      "an IPv6 literal keeps its brackets in Host",
      "GET http://[::1]:8080/ HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    ],
    [
      "origin-form: unchanged, Proxy-Connection and all",
      "GET /a?b HTTP/1.1\r\nHost: a\r\nProxy-Connection: x\r\nX-A:  b \r\n\r\nbody",
      "GET /a?b HTTP/1.1\r\nHost: a\r\nProxy-Connection: x\r\nX-A:  b \r\n\r\n",
    ],
    [
      "asterisk-form: unchanged",
      "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    [
      "CONNECT: unchanged, the tunnel's bytes left out",
      "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nProxy-Authorization: x\r\n\r\n\x16\x03\x01",
      "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nProxy-Authorization: x\r\n\r\n",
    ],
  ];
  for (const [name, input, expected] of cases) {
    const raw = bytes(input);
    const r = readRequestHead(raw);
    assert.equal(r.kind, "head", name);
    const { head } = r as { head: RequestHead };
    const out = originFormHead(head, raw);
    assert.equal(text(out), expected, name);
    // Upstream reads it as the same request, in origin (or its own) form.
    const again = readRequestHead(out);
    assert.equal(again.kind, "head", name);
    const upstream = (again as { head: RequestHead }).head;
    assert.notEqual(upstream.form, "absolute", name);
    assert.equal(upstream.host, head.host, name);
    assert.equal(upstream.path, head.path, name);
    assert.equal(upstream.port ?? 80, head.port ?? 80, name);
  }
  const head = headOf("GET http://a/ HTTP/1.1\r\n\r\n");
  assert.throws(() => originFormHead(head, bytes("GET http://a/ HTTP/1.1\r\n")), RangeError);
  assert.throws(
    () => originFormHead({ ...head, target: "/x" }, bytes("GET /x HTTP/1.1\r\n\r\n")),
    RangeError,
  );
});

Deno.test("redactQuery keeps that there was a query, not what it said, and drops a fragment", () => {
  const cases: Array<[string, string]> = [
    ["/a/b", "/a/b"],
    ["/a/b?token=secret&x=1", "/a/b?…"],
    ["/a?", "/a?…"],
    ["/?a?b", "/?…"],
    ["/a#frag", "/a"],
    ["/a#frag?not-a-query", "/a"],
    ["/a?q=1#frag", "/a?…"],
    ["http://example.com/p?key=1", "http://example.com/p?…"],
    ["http://example.com?key=1", "http://example.com?…"],
    ["example.com:443", "example.com:443"],
    ["*", "*"],
    ["", ""],
  ];
  for (const [target, expected] of cases) assert.equal(redactQuery(target), expected, target);
});
