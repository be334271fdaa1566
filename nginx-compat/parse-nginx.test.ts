import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { NginxSyntaxError, parseNginx, type NginxDirective } from "./parse-nginx.js";

/** Directives as `name [args] @line:col`, blocks indented, so a case reads like the config. */
function show(directives: readonly NginxDirective[], indent = ""): string[] {
  return directives.flatMap((d) => [`${indent}${d.name} ${JSON.stringify(d.args)} @${d.where.replace(/^t\.conf:/, "")}`, ...show(d.block ?? [], `${indent}  `)]);
}

const parse = (text: string): string[] => show(parseNginx({ text, file: "/nonexistent/nginx.conf", displayName: "t.conf" }));

/** nginx's lexer rules (src/core/ngx_conf_file.c), each with what nginx itself reads. */
const CASES: ReadonlyArray<{ name: string; text: string; expected: string[] | RegExp }> = [
  { name: "positions are line:col of the name", text: "a 1;\n  b 2 3 { c; }", expected: ['a ["1"] @1:1', 'b ["2","3"] @2:3', '  c [] @2:11'] },
  { name: "one-line block: every directive has its own column", text: "server { listen 443 ssl; location / { proxy_pass http://x/; } }", expected: ['server [] @1:1', '  listen ["443","ssl"] @1:10', '  location ["/"] @1:26', '    proxy_pass ["http://x/"] @1:39'] },
  { name: "comments only where a token starts", text: "# c\na b#c; # d\n", expected: ['a ["b#c"] @2:1'] },
  { name: "double and single quotes, escapes resolved", text: `a "x y" 'it\\'s' "q\\"" "t\\tn\\n";`, expected: ['a ["x y","it\'s","q\\"","t\\tn\\n"] @1:1'] },
  { name: "a backslash before other characters stays (regexes)", text: "location ~ \\.php$ { }", expected: ['location ["~","\\\\.php$"] @1:1'] },
  { name: "an escaped separator is part of the word, backslash kept", text: "a b\\;c;", expected: ['a ["b\\\\;c"] @1:1'] },
  { name: "${var} inside a word", text: "a ${host}x $y;", expected: ['a ["${host}x","$y"] @1:1'] },
  { name: "} inside a word is part of it", text: "a b}c;", expected: ['a ["b}c"] @1:1'] },
  { name: "if conditions keep their parentheses", text: 'if ($host = "a.example") { return 301 https://$host$request_uri; }', expected: ['if ["($host","=","a.example",")"] @1:1', '  return ["301","https://$host$request_uri"] @1:28'] },
  { name: "quoted string spanning lines keeps line counting right", text: 'a "x\ny";\nb;', expected: ['a ["x\\ny"] @1:1', "b [] @3:1"] },
  { name: "empty quoted argument", text: "map $a $b { '' ''; }", expected: ['map ["$a","$b"] @1:1', '   [""] @1:13'] },
  { name: "text right after a quote", text: 'a "x"y;', expected: /^t\.conf:1:6: unexpected "y" right after a quoted string/ },
  { name: "unterminated quote", text: 'a "x;\n', expected: /^t\.conf:1:3: unterminated " quote/ },
  { name: "missing ;", text: "a b", expected: /^t\.conf:1:1: directive "a" has no ending ";"/ },
  { name: "block never closed", text: "a {\n b;", expected: /^t\.conf:1:3: block opened here is never closed/ },
  { name: "stray }", text: "a;\n}", expected: /^t\.conf:2:1: unexpected "}"/ },
  { name: "; with no directive", text: " ;", expected: /^t\.conf:1:2: unexpected ";"/ },
];

describe("parseNginx: nginx's syntax", () => {
  for (const c of CASES) {
    it(c.name, () => {
      if (Array.isArray(c.expected)) assert.deepEqual(parse(c.text), c.expected);
      else assert.throws(() => parse(c.text), (err: Error) => err instanceof NginxSyntaxError && (c.expected as RegExp).test(err.message));
    });
  }
});

describe("parseNginx: include", () => {
  const dir = mkdtempSync(join(tmpdir(), "parse-nginx-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "sites"));
  writeFileSync(join(dir, "sites", "b.conf"), "b;\n");
  writeFileSync(join(dir, "sites", "a.conf"), "\n  a;\n");
  writeFileSync(join(dir, "sites", ".hidden.conf"), "hidden;\n");
  writeFileSync(join(dir, "sites", "a.conf.bak"), "bak;\n");
  const main = join(dir, "nginx.conf");
  const read = (text: string): string[] => show(parseNginx({ text, file: main, displayName: "nginx.conf" })).map((l) => l.replace(/ \[\]/, ""));

  it("a glob relative to the main file's folder, in sorted order, named relative to it", () => {
    assert.deepEqual(parseNginx({ text: "http { include sites/*.conf; }", file: main, displayName: "nginx.conf" })[0]?.block?.map((d) => `${d.name} ${d.where}`), ["a sites/a.conf:2:3", "b sites/b.conf:1:1"]);
  });
  it("an absolute path", () => assert.deepEqual(read(`include ${join(dir, "sites", "b.conf")};`), ["b @sites/b.conf:1:1"]));
  it("a glob matching nothing is fine, as in nginx", () => assert.deepEqual(read("include none/*.conf; c;"), ["c @nginx.conf:1:22"]));
  it("a missing file says where it was looked for", () => assert.throws(() => read("include missing.conf;"), (err: Error) => err instanceof NginxSyntaxError && /^nginx\.conf:1:1: include: file not found \(.*missing\.conf\); give a path relative to /.test(err.message)));
});
