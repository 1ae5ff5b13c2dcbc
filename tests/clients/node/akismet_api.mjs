// Drives the npm akismet-api client against a server (arguments and output: ../README.md).
//
// akismet-api puts the key only in the host name (`<key>.<host>`), so the server must be
// reachable under such a name. A site gives its server a wildcard DNS record; here the
// host is `localhost:PORT` and `<key>.localhost` is resolved to loopback, as RFC 6761
// (section 6.3) allows for every name under .localhost. Node's resolver does not do that
// on its own (getaddrinfo answers ENOTFOUND), and the client passes no agent or lookup of
// its own, so dns.lookup, which Node's sockets call, is given that one rule (localhost and
// the names under it are 127.0.0.1, where the test server listens).
import dns from "node:dns";
import { AkismetClient } from "akismet-api";

const LOOPBACK = "127.0.0.1"; // where the test server listens
const systemLookup = dns.lookup;
dns.lookup = function lookup(hostname, options, callback) {
  if (!/(^|\.)localhost$/i.test(hostname)) return systemLookup.call(dns, hostname, options, callback);
  const done = typeof options === "function" ? options : callback;
  const all = typeof options === "object" && options !== null && options.all;
  process.nextTick(() => (all ? done(null, [{ address: LOOPBACK, family: 4 }]) : done(null, LOOPBACK, 4)));
};

const [serverUrl, apiKey, blogUrl, action, commentJson = "{}"] = process.argv.slice(2);
const fields = JSON.parse(commentJson);
const server = new URL(serverUrl);
// The client's own field names (it maps its aliases to Akismet's); others it drops.
const SENDABLE = new Set(["user_ip", "user_agent", "referrer", "comment_author", "comment_author_email",
  "comment_content", "is_test", "comment_type", "comment_date_gmt", "permalink", "comment_post_modified_gmt",
  "comment_author_url", "user_role", "honeypot_field_name", "honeypot"]);
const unsent = Object.keys(fields).filter((name) => !SENDABLE.has(name));

async function run() {
  const client = new AkismetClient({
    key: apiKey, blog: blogUrl,
    host: `localhost:${server.port}`, protocol: server.protocol.replace(":", ""),
  });
  switch (action) {
    case "verify-key": {
      const valid = await client.verifyKey();
      return { result: valid, raw: valid };
    }
    case "comment-check": {
      const spam = await client.checkSpam(fields);
      return { result: spam ? "spam" : "ham", raw: spam };
    }
    case "submit-spam":
    case "submit-ham": {
      // The client resolves with the HTTP response whatever its body says.
      const res = action === "submit-spam" ? await client.submitSpam(fields) : await client.submitHam(fields);
      return { result: true, raw: null, body: res.text };
    }
    default:
      throw new Error(`unknown action ${action}`);
  }
}

try {
  const answer = await run();
  console.log(JSON.stringify({ ok: true, ...answer, unsent }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error_type: error.name, error: error.message, cause: error.code ?? null, unsent }));
}
