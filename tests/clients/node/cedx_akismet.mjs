// Drives the npm @cedx/akismet client against a server (arguments and output: ../README.md).
import { Author, Blog, Client, Comment } from "@cedx/akismet";

const [serverUrl, apiKey, blogUrl, action, commentJson = "{}"] = process.argv.slice(2);
const fields = JSON.parse(commentJson);
const unsent = [];

/** The fields as the client's Comment; any field it has no place for is listed in `unsent`. */
function toComment(f) {
  const known = new Set(["user_ip", "user_agent", "comment_author", "comment_author_email", "comment_author_url",
    "user_role", "comment_content", "comment_type", "comment_context", "permalink", "referrer", "is_test"]);
  for (const name of Object.keys(f)) if (!known.has(name)) unsent.push(name);
  const author = new Author({
    ipAddress: f.user_ip, userAgent: f.user_agent, name: f.comment_author, email: f.comment_author_email,
    url: f.comment_author_url, role: f.user_role,
  });
  return new Comment({
    author, content: f.comment_content, type: f.comment_type, context: f.comment_context,
    permalink: f.permalink, referrer: f.referrer,
  });
}

const VERDICTS = ["ham", "spam", "discard"]; // CheckResult.ham, .spam, .pervasiveSpam

async function run() {
  // is_test is a client option here, not a comment field: the client adds it to every call.
  const client = new Client(apiKey, new Blog({ url: blogUrl }), { baseUrl: serverUrl, isTest: Boolean(fields.is_test) });
  switch (action) {
    case "verify-key": {
      const valid = await client.verifyKey();
      return { result: valid, raw: valid };
    }
    case "comment-check": {
      const raw = await client.checkComment(toComment(fields));
      return { result: VERDICTS[raw] ?? null, raw };
    }
    case "submit-spam":
      await client.submitSpam(toComment(fields));
      return { result: true, raw: null };
    case "submit-ham":
      await client.submitHam(toComment(fields));
      return { result: true, raw: null };
    default:
      throw new Error(`unknown action ${action}`);
  }
}

try {
  const answer = await run();
  console.log(JSON.stringify({ ok: true, ...answer, unsent }));
} catch (error) {
  // fetch() wraps a refused connection in a TypeError whose cause says why.
  const cause = error.cause ? `${error.cause.code ?? error.cause.name}: ${error.cause.message}` : null;
  console.log(JSON.stringify({ ok: false, error_type: error.name, error: error.message, cause, unsent }));
}
