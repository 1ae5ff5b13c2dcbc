# Drives Debian's ruby-akismet (the `akismet` gem) against a server (arguments and output: README.md).
#
# The gem has no setting for its server: it always opens https://<key>.rest.akismet.com
# (https://rest.akismet.com for verify-key) on port 443, and sends the key only in that host
# name. To reach a test server without touching the gem, Net::HTTP is told here to connect to
# the server's address and port over plain HTTP, while the request keeps the host name the
# gem chose, so CommentGuard reads the key from the Host header as it would in production
# (where a site would resolve rest.akismet.com to its server and give it a certificate).
require 'json'
require 'net/http'
require 'uri'
require 'akismet'

server_url, api_key, blog_url, action, comment_json = ARGV
target = URI(server_url)

Net::HTTP.prepend(Module.new do
  define_method(:initialize) do |address, _port = nil, *rest|
    super(address, target.port, *rest)
    self.ipaddr = target.host
  end

  def use_ssl=(_flag)
    super(false) # the test server speaks plain HTTP
  end
end)

fields = JSON.parse(comment_json || '{}')
# Akismet field names to the gem's parameter names; the rest are reported as unsent.
PARAMS = {
  'referrer' => :referrer, 'permalink' => :post_url, 'comment_content' => :text, 'comment_type' => :type,
  'comment_author' => :author, 'comment_author_email' => :author_email, 'comment_author_url' => :author_url,
  'user_role' => :user_role, 'is_test' => :test, 'blog_lang' => :languages,
}.freeze
params = {}
unsent = []
fields.each do |name, value|
  next if %w[user_ip user_agent].include?(name)
  if PARAMS.key?(name)
    params[PARAMS[name]] = value
  else
    unsent << name
  end
end

def verdict(spam, blatant)
  return 'ham' unless spam
  blatant ? 'discard' : 'spam'
end

begin
  client = Akismet::Client.new(api_key, blog_url, app_name: 'CommentGuard tests')
  answer =
    case action
    when 'verify-key'
      valid = client.verify_key
      { result: valid, raw: valid }
    when 'comment-check'
      spam, blatant = client.check(fields['user_ip'], fields['user_agent'], params)
      { result: verdict(spam, blatant), raw: [spam, blatant] }
    when 'submit-spam'
      client.spam(fields['user_ip'], fields['user_agent'], params)
      { result: true, raw: nil }
    when 'submit-ham'
      client.ham(fields['user_ip'], fields['user_agent'], params)
      { result: true, raw: nil }
    else
      raise ArgumentError, "unknown action #{action}"
    end
  puts JSON.generate({ ok: true, unsent: unsent }.merge(answer))
rescue StandardError => e
  puts JSON.generate({ ok: false, error_type: e.class.name, error: e.message, unsent: unsent })
end
