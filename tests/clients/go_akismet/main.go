// Drives github.com/adtac/go-akismet (Debian golang-github-adtac-go-akismet-dev), the client
// Commento uses, against a server (arguments and output: ../README.md).
//
// The package has no setting for its server: every call POSTs to
// https://<key>.rest.akismet.com/1.1/<endpoint> with a zero http.Client, so through
// http.DefaultTransport, and sends the key only in that host name. To reach a plain-HTTP test
// server without touching the package, http.DefaultTransport is replaced here by one that
// dials the server's address for every connection, https ones included, and does no TLS on
// it; the request keeps the URL and Host header the package chose, so CommentGuard reads the
// key from the Host header as it would in production (where a site would resolve
// <key>.rest.akismet.com to its server and give it a certificate).
//
// Build (offline, GOPATH mode): GO111MODULE=off GOPATH=/usr/share/gocode go build -o DRIVER .
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/adtac/go-akismet/akismet"
)

// recorder keeps the body of the last response, which SubmitSpam and SubmitHam read and
// drop: the driver shows it as "body" (the package itself never looks at it).
type recorder struct {
	next http.RoundTripper
	body string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	data, readErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.body = string(data)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, readErr
}

// redirectTo returns a transport that connects every request to addr over plain TCP.
func redirectTo(addr string) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, "tcp", addr)
	}
	return &http.Transport{
		Proxy:          nil, // straight to the server, whatever *_proxy says
		DialContext:    dial,
		DialTLSContext: dial, // an https URL, but the test server speaks plain HTTP
	}
}

// setField puts an Akismet field into the package's Comment; false when it has no place for it.
func setField(c *akismet.Comment, name, value string) bool {
	fields := map[string]*string{
		"blog": &c.Blog, "user_ip": &c.UserIP, "user_agent": &c.UserAgent, "referrer": &c.Referrer,
		"permalink": &c.Permalink, "comment_type": &c.CommentType, "comment_author": &c.CommentAuthor,
		"comment_author_email": &c.CommentAuthorEmail, "comment_author_url": &c.CommentAuthorURL,
		"comment_content": &c.CommentContent, "blog_lang": &c.BlogLang, "blog_charset": &c.BlogCharset,
		"user_role": &c.UserRole,
	}
	target, ok := fields[name]
	if ok {
		*target = value
	}
	return ok
}

// parseComment maps COMMENT_JSON onto a Comment, reporting unsendable fields in their order.
func parseComment(text string, c *akismet.Comment) ([]string, error) {
	unsent := []string{}
	dec := json.NewDecoder(strings.NewReader(text))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return unsent, fmt.Errorf("COMMENT_JSON is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return unsent, err
		}
		name := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return unsent, err
		}
		value := string(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			value = s
		}
		if !setField(c, name, value) {
			unsent = append(unsent, name)
		}
	}
	return unsent, nil
}

func main() {
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: go_akismet SERVER_URL KEY BLOG ACTION [COMMENT_JSON]")
		os.Exit(2)
	}
	serverURL, key, blog, action := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	commentJSON := "{}"
	if len(os.Args) > 5 {
		commentJSON = os.Args[5]
	}
	server, err := url.Parse(serverURL)
	if err != nil || server.Host == "" {
		fmt.Fprintf(os.Stderr, "bad SERVER_URL %q\n", serverURL)
		os.Exit(2)
	}
	rec := &recorder{next: redirectTo(server.Host)}
	http.DefaultTransport = rec

	comment := akismet.Comment{Blog: blog}
	unsent, err := parseComment(commentJSON, &comment)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	answer := map[string]any{"unsent": unsent}
	switch action {
	case "comment-check":
		// Check answers true (spam) along with any error: shown as "raw" either way.
		spam, err := akismet.Check(&comment, key)
		answer["raw"] = spam
		if err == nil {
			verdict := "ham"
			if spam {
				verdict = "spam"
			}
			answer["ok"], answer["result"] = true, verdict
		} else {
			answer["ok"], answer["error_type"], answer["error"] = false, fmt.Sprintf("%T", err), err.Error()
		}
	case "submit-spam", "submit-ham":
		submit := akismet.SubmitSpam
		if action == "submit-ham" {
			submit = akismet.SubmitHam
		}
		if err := submit(&comment, key); err == nil {
			answer["ok"], answer["result"], answer["raw"], answer["body"] = true, true, nil, rec.body
		} else {
			answer["ok"], answer["error_type"], answer["error"] = false, fmt.Sprintf("%T", err), err.Error()
		}
	case "verify-key":
		// The package has no verify-key call (nor any other call than these three).
		answer["ok"], answer["error_type"], answer["error"] = false, "unsupported", "go-akismet has no verify-key call"
	default:
		fmt.Fprintf(os.Stderr, "unknown action %q\n", action)
		os.Exit(2)
	}
	out, _ := json.Marshal(answer)
	fmt.Println(string(out))
}
