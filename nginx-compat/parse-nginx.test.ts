import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, describe, it } from "node:test";
import { NginxSyntaxError, parseNginx, type NginxDirective } from "./parse-nginx.js";

/** Directives as `name [args] @line:col`, blocks indented, so a case reads like the config. */
function show(directives: readonly NginxDirective[], indent = ""): string[] {
  return directives.flatMap((d) => [`${indent}${d.name} ${JSON.stringify(d.args)} @${d.where.replace(/^t\.conf:/, "")}`, ...show(d.block ?? [], `${indent}  `)]);
}

const parse = (text: string): string[] => show(parseNginx({ text, file: "/nonexistent/nginx.conf", displayName: "t.conf", prefix: "/nonexistent" }).directives);

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
  writeFileSync(join(dir, "sites", "a.conf"), "\n  a;\n  include params;\n");
  writeFileSync(join(dir, "sites", ".hidden.conf"), "hidden;\n");
  writeFileSync(join(dir, "sites", "a.conf.bak"), "bak;\n");
  writeFileSync(join(dir, "params"), "p;\n");
  // Only the right one of these parses: reading another is a syntax error.
  writeFileSync(join(dir, "sites", "params"), "decoy {\n");
  const main = join(dir, "nginx.conf");
  const read = (text: string, file = main, prefix = "/nonexistent"): string[] =>
    show(parseNginx({ text, file, displayName: relative(dir, file), prefix }).directives).map((l) => l.replace(/ \[\]/, ""));

  it("a whole nginx.conf: relative to its own folder (as nginx -c reads it), whatever --prefix says; globs sorted", () =>
    assert.deepEqual(read("events { } http { include sites/*.conf; }"), ["events @nginx.conf:1:1", "http @nginx.conf:1:12", "  a @sites/a.conf:2:3", "  p @params:1:1", "  b @sites/b.conf:1:1"]));
  // The next three import sites/jupyter.conf, which nginx.conf includes: params is outside its
  // folder, so it is named by its absolute path.
  const params = `p @${join(dir, "params")}:1:1`;
  it("a file nginx.conf includes: relative to the prefix, not to its own folder", () =>
    assert.deepEqual(read("include params;", join(dir, "sites", "jupyter.conf"), dir), [params]));
  it("an included file's includes: relative to the prefix too", () =>
    assert.deepEqual(read("include sites/a.conf;", join(dir, "sites", "jupyter.conf"), dir), ["a @sites/a.conf:2:3", params]));
  it("a prefix given relative to the working folder", () =>
    assert.deepEqual(read("include params;", join(dir, "sites", "jupyter.conf"), relative(process.cwd(), dir)), [params]));
  it("an absolute path", () => assert.deepEqual(read(`include ${join(dir, "sites", "b.conf")};`), ["b @sites/b.conf:1:1"]));
  it("a glob matching nothing is fine, as in nginx", () => assert.deepEqual(read("include none/*.conf; c;"), ["c @nginx.conf:1:22"]));
  it("a missing file says where it was looked for and names --prefix", () =>
    assert.throws(
      () => read("include proxy_params;", join(dir, "sites", "jupyter.conf"), dir),
      (err: Error) => err instanceof NginxSyntaxError && err.message.startsWith(`sites/jupyter.conf:1:1: include proxy_params: file not found (looked for ${join(dir, "proxy_params")}); nginx resolves relative paths against the folder of nginx.conf, here ${dir} (--prefix); if your nginx.conf is elsewhere, pass --prefix DIR`),
    ));
  it("a whole nginx.conf's missing include names its folder", () =>
    assert.throws(() => read("events { } include missing.conf;"), (err: Error) => err instanceof NginxSyntaxError && err.message === `nginx.conf:1:12: include missing.conf: file not found (looked for ${join(dir, "missing.conf")}); nginx resolves relative paths against the folder of nginx.conf, here ${dir}; fix the path`));
});
