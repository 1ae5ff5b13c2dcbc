<?php
/**
 * Plugin Name: CommentGuard for Akismet
 * Description: Sends the Akismet plugin's API calls to a self-hosted CommentGuard server instead of rest.akismet.com.
 * Version: 1.2.0
 * License: MIT
 *
 * A must-use plugin: copy this file into wp-content/mu-plugins/ (create the
 * folder if it is missing) and name the server in wp-config.php, above the
 * "That's all, stop editing!" line:
 *
 *     define( 'COMMENTGUARD_URL', 'https://commentguard.example.org' );
 *
 * Then enter a key made with `commentguard keys create --site <your site>` in
 * Settings > Akismet Anti-spam (or define WPCOM_API_KEY). The Akismet plugin
 * itself stays unchanged.
 *
 * How: the plugin's host is a constant (rest.akismet.com), so this file hooks
 * WordPress core's `pre_http_request` filter. A request for
 * `http(s)://rest.akismet.com/<path>` or `http(s)://<label>.rest.akismet.com/<path>`,
 * or one the plugin pins to an address of Akismet's (`http://<ip>/<path>` with the
 * header `Host: rest.akismet.com`, its connectivity check),
 * is sent to `COMMENTGUARD_URL/<path>` with the plugin's own method, body,
 * headers and timeout, and its answer handed back to the plugin as if Akismet
 * had given it. Only the `Host` header changes (see below). Every other request
 * passes untouched. Without COMMENTGUARD_URL this file does nothing, so the
 * plugin keeps talking to Akismet.
 *
 * Unsure comments: CommentGuard answers its `unsure` verdict (hold for
 * moderation) `true` by default, and the Akismet protocol has no answer that
 * means "hold", so the plugin would put such a comment in the Spam queue, which
 * it empties after 15 days. This file reads CommentGuard's own
 * `X-CommentGuard-Verdict` header instead and holds an `unsure` comment in the
 * moderation queue (Pending), also when a recheck (the "Check for Spam" button,
 * the retry after an outage) finds it `unsure`. When a moderator approves it,
 * the plugin is asked to report it as ham, so that CommentGuard learns from the
 * decision. To keep the plugin's behaviour, add
 *
 *     define( 'COMMENTGUARD_HOLD_UNSURE', false );
 *
 * Reasons: each new comment keeps CommentGuard's verdict, score, reasons and
 * check id (comment meta `commentguard_verdict`), and wp-admin shows them to
 * whoever may moderate the comment, under its text. Reports (Spam / Not Spam)
 * carry that check id, and the comment's address when the plugin's copy of the
 * checked comment has expired (after 15 days).
 *
 * Outages: a comment posted through the REST API while CommentGuard cannot be
 * reached is held too (the plugin holds only form posts then).
 *
 * Moderation e-mail: WordPress e-mails the moderators about a held form post, but
 * never about a comment posted through the REST API. When this file holds a REST
 * comment WordPress would have published (unsure, or an outage), it sends
 * WordPress's usual moderation e-mail ("Email me whenever a comment is held for
 * moderation" decides, as for form posts; the plugin defers the e-mail of a comment
 * checked during an outage until its retry, as for form posts). When the retry
 * after an outage finds a comment `unsure` and holds it, the deferred e-mail goes
 * out then.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

add_filter( 'pre_http_request', 'commentguard_akismet_redirect', 10, 3 );
// After the plugin's own filters (priority 10 on pre_comment_approved, 1 on rest_pre_insert_comment).
add_filter( 'pre_comment_approved', 'commentguard_hold_unsure', 20, 2 );
add_filter( 'rest_pre_insert_comment', 'commentguard_note_rest_approval', 0, 1 );
add_filter( 'rest_pre_insert_comment', 'commentguard_hold_rest_comment', 20, 1 );
add_action( 'rest_insert_comment', 'commentguard_notify_rest_held', 20, 3 );
add_action( 'wp_insert_comment', 'commentguard_remember_check', 20, 2 );
add_action( 'wp_set_comment_status', 'commentguard_keep_rechecked_unsure_held', 20, 2 );
add_action( 'transition_comment_status', 'commentguard_report_approved', 20, 3 );
add_action( 'akismet_submit_nonspam_comment', 'commentguard_reported_ham', 20, 2 );
add_filter( 'comment_text', 'commentguard_show_verdict', 99, 2 ); // after wpautop (30)

/** Meta key marking a comment held for moderation on an `unsure` verdict, until a moderator decides. */
const COMMENTGUARD_HELD_META = 'commentguard_held_unsure';
/** Meta key keeping CommentGuard's verdict on a comment: tier, score, reasons, check id. */
const COMMENTGUARD_VERDICT_META = 'commentguard_verdict';
/** The answer CommentGuard gives a report it stored. */
const COMMENTGUARD_THANKS = 'Thanks for making the web a better place.';

/**
 * The CommentGuard answer for a request meant for Akismet; `$preempt` for any other request.
 *
 * @param false|array|WP_Error $preempt What an earlier filter decided (false: nothing yet).
 * @param array                $args    The request's arguments (method, body, headers, timeout...).
 * @param string               $url     Where the caller meant to send it.
 * @return false|array|WP_Error
 */
function commentguard_akismet_redirect( $preempt, $args, $url ) {
	if ( false !== $preempt || ! defined( 'COMMENTGUARD_URL' ) || '' === (string) COMMENTGUARD_URL ) {
		return $preempt;
	}
	$headers     = isset( $args['headers'] ) ? (array) $args['headers'] : array();
	$host_header = '';
	foreach ( array_keys( $headers ) as $name ) {
		if ( 'host' === strtolower( (string) $name ) ) {
			$host_header = (string) $headers[ $name ];
			unset( $headers[ $name ] );
		}
	}
	$target = commentguard_akismet_target( $url, $host_header, (string) COMMENTGUARD_URL );
	if ( null === $target ) {
		return $preempt;
	}
	// A server reached through a name-based reverse proxy (or TLS) must be asked for by its own
	// name: the plugin sets `Host: rest.akismet.com`, which would route to the wrong site there.
	// A key carried as the first label of the old `<key>.rest.akismet.com` host is kept in
	// front of the server's name, where CommentGuard also looks for it.
	if ( '' !== $target['label'] ) {
		$headers['Host'] = $target['label'] . '.' . $target['host'];
	}
	$args['headers'] = $headers;
	$path            = (string) wp_parse_url( $target['url'], PHP_URL_PATH );
	$fields          = commentguard_form_fields( isset( $args['body'] ) ? $args['body'] : '' );
	if ( preg_match( '#/1\.1/submit-(spam|ham)$#', $path ) && isset( $args['body'] ) && is_string( $args['body'] ) ) {
		$args['body'] = commentguard_complete_report( $args['body'], $fields );
	}
	$response = wp_remote_request( $target['url'], $args );
	if ( '/1.1/comment-check' === substr( $path, -18 ) ) {
		commentguard_note_verdict( $response, $fields );
	}
	return $response;
}

// --- holding `unsure` comments, keeping and showing verdicts --------------------------------
//
// A comment-check answer is noted in globals (the check and the comment's insert happen in one
// request, with no id to join them) together with who the comment is (post, author e-mail), and
// used only by the insert of that same comment: a comment WordPress refuses after its check
// (a duplicate, a flood) must not hand its verdict to the next comment another plugin inserts.

/**
 * Whether unsure comments are held for moderation (COMMENTGUARD_HOLD_UNSURE, default true).
 *
 * @return bool
 */
function commentguard_holds_unsure() {
	return ! defined( 'COMMENTGUARD_HOLD_UNSURE' ) || (bool) COMMENTGUARD_HOLD_UNSURE;
}

/**
 * A request body's fields (`key=value&...` or an array), as the plugin sent them.
 *
 * @param array|string $body The body.
 * @return array
 */
function commentguard_form_fields( $body ) {
	if ( is_array( $body ) ) {
		return $body;
	}
	$fields = array();
	parse_str( (string) $body, $fields );
	return $fields;
}

/**
 * One response header's value; the last one when a proxy or server repeated it.
 *
 * @param array|WP_Error $response A response.
 * @param string         $name     The header's name.
 * @return string
 */
function commentguard_header( $response, $name ) {
	$value = wp_remote_retrieve_header( $response, $name );
	if ( is_array( $value ) ) {
		$value = end( $value );
	}
	return trim( (string) $value );
}

/**
 * Who a comment is, to tell that an insert is the comment a check was made for.
 *
 * @param int|string $post_id The comment's post.
 * @param string     $email   Its author's e-mail.
 * @return string
 */
function commentguard_identity( $post_id, $email ) {
	// Entities decoded: the address checked is the one sent, the one stored has been through
	// WordPress's kses filter (`a&b@…` is stored `a&amp;b@…`), and the two must still match.
	return (int) $post_id . '|' . strtolower( trim( html_entity_decode( (string) $email, ENT_QUOTES | ENT_HTML5, 'UTF-8' ) ) );
}

/**
 * Note CommentGuard's answer to a comment-check: the verdict kept with the new comment, and
 * whether the comment must be held (an `unsure` answered `true`). A recheck names the stored
 * comment it concerns (`comment_ID`), which stays held if it is `unsure` (see
 * commentguard_keep_rechecked_unsure_held).
 *
 * @param array|WP_Error $response The server's answer.
 * @param array          $fields   The request's fields.
 */
function commentguard_note_verdict( $response, $fields ) {
	$GLOBALS['commentguard_check']          = null;
	$GLOBALS['commentguard_recheck_unsure'] = 0;
	$GLOBALS['commentguard_recheck_retry']  = false;
	$verdict = is_wp_error( $response ) ? '' : strtolower( commentguard_header( $response, 'x-commentguard-verdict' ) );
	if ( '' === $verdict ) {
		return; // CommentGuard unreachable, or not CommentGuard answering.
	}
	$hold = commentguard_holds_unsure() && 'unsure' === $verdict && 'true' === trim( (string) wp_remote_retrieve_body( $response ) );
	if ( ! empty( $fields['recheck_reason'] ) ) {
		$GLOBALS['commentguard_recheck_unsure'] = $hold && isset( $fields['comment_ID'] ) ? (int) $fields['comment_ID'] : 0;
		$GLOBALS['commentguard_recheck_retry']  = 'retry' === $fields['recheck_reason'];
		return;
	}
	$reasons                       = json_decode( commentguard_header( $response, 'x-commentguard-reasons' ), true );
	$GLOBALS['commentguard_check'] = array(
		'identity' => commentguard_identity(
			isset( $fields['comment_post_ID'] ) ? $fields['comment_post_ID'] : 0,
			isset( $fields['comment_author_email'] ) ? $fields['comment_author_email'] : ''
		),
		'hold'     => $hold,
		'held'     => false,
		'verdict'  => array(
			'verdict'  => sanitize_key( $verdict ),
			'score'    => (float) commentguard_header( $response, 'x-commentguard-score' ),
			'reasons'  => is_array( $reasons ) ? array_values( array_filter( $reasons, 'is_string' ) ) : array(),
			'check_id' => sanitize_key( commentguard_header( $response, 'x-commentguard-check-id' ) ),
			'enforced' => 'false' !== strtolower( commentguard_header( $response, 'x-commentguard-enforced' ) ),
		),
	);
}

/**
 * The noted check, if it was made for this comment.
 *
 * @param int|string $post_id The comment's post.
 * @param string     $email   Its author's e-mail.
 * @return array|null
 */
function commentguard_check_for( $post_id, $email ) {
	$check = isset( $GLOBALS['commentguard_check'] ) ? $GLOBALS['commentguard_check'] : null;
	return is_array( $check ) && commentguard_identity( $post_id, $email ) === $check['identity'] ? $check : null;
}

/**
 * `pre_comment_approved`: a new comment the plugin sent to Spam on an `unsure` verdict waits
 * in the moderation queue instead (0). A comment on the site's own block list ("Disallowed
 * Comment Keys") and every other outcome pass unchanged.
 *
 * @param int|string|WP_Error $approved    What WordPress and the plugin decided.
 * @param array               $commentdata The comment.
 * @return int|string|WP_Error
 */
function commentguard_hold_unsure( $approved, $commentdata ) {
	$check = commentguard_check_for(
		isset( $commentdata['comment_post_ID'] ) ? $commentdata['comment_post_ID'] : 0,
		isset( $commentdata['comment_author_email'] ) ? $commentdata['comment_author_email'] : ''
	);
	if ( 'spam' !== $approved || null === $check || ! $check['hold'] || commentguard_disallowed( $commentdata ) ) {
		return $approved;
	}
	$GLOBALS['commentguard_check']['held'] = true;
	return 0;
}

/**
 * Whether WordPress's own block list (Settings > Discussion) matches the comment.
 *
 * @param array $c The comment.
 * @return bool
 */
function commentguard_disallowed( $c ) {
	if ( ! function_exists( 'wp_check_comment_disallowed_list' ) ) {
		return false;
	}
	$get = function ( $name ) use ( $c ) {
		return isset( $c[ $name ] ) ? (string) $c[ $name ] : '';
	};
	return (bool) wp_check_comment_disallowed_list( $get( 'comment_author' ), $get( 'comment_author_email' ),
		$get( 'comment_author_url' ), $get( 'comment_content' ), $get( 'comment_author_IP' ), $get( 'comment_agent' ) );
}

/**
 * `rest_pre_insert_comment`, before the plugin's check: whether WordPress's own rules publish
 * this REST comment (the plugin overwrites the decision with Spam on a `true` answer). Only a
 * comment they publish and this file holds gets a moderation e-mail from it (see below).
 *
 * @param array|WP_Error $prepared The comment about to be inserted.
 * @return array|WP_Error Unchanged.
 */
function commentguard_note_rest_approval( $prepared ) {
	$GLOBALS['commentguard_rest_held']      = null;
	$GLOBALS['commentguard_rest_published'] = is_array( $prepared ) && isset( $prepared['comment_approved'] )
		&& in_array( $prepared['comment_approved'], array( 1, '1' ), true );
	return $prepared;
}

/**
 * `rest_pre_insert_comment`: the same for a comment posted through the REST API, where the
 * plugin checks (and sets the status) after WordPress's approval filter has run. That is also
 * why the plugin cannot hold a REST comment whose check failed (CommentGuard unreachable): it
 * was published unchecked and dropped from the plugin's retry queue, which takes only
 * Pending comments. Such a comment is held here.
 *
 * @param array|WP_Error $prepared The comment about to be inserted.
 * @return array|WP_Error
 */
function commentguard_hold_rest_comment( $prepared ) {
	if ( ! is_array( $prepared ) || ! isset( $prepared['comment_approved'] ) ) {
		return $prepared;
	}
	$failed = isset( $prepared['akismet_result'] ) && ! in_array( $prepared['akismet_result'], array( 'true', 'false' ), true );
	// A moderator's own comment is not held after a failed check, as the plugin does not hold
	// their form posts (it held a moderator's REST comment and e-mailed them about it).
	if ( $failed && in_array( $prepared['comment_approved'], array( 1, '1' ), true ) && ! current_user_can( 'moderate_comments' ) ) {
		$prepared['comment_approved'] = 0;
	} else {
		$prepared['comment_approved'] = commentguard_hold_unsure( $prepared['comment_approved'], $prepared );
	}
	if ( 0 === $prepared['comment_approved'] && ! empty( $GLOBALS['commentguard_rest_published'] ) ) {
		$GLOBALS['commentguard_rest_held'] = commentguard_identity(
			isset( $prepared['comment_post_ID'] ) ? $prepared['comment_post_ID'] : 0,
			isset( $prepared['comment_author_email'] ) ? $prepared['comment_author_email'] : ''
		);
	}
	return $prepared;
}

/**
 * `rest_insert_comment`: WordPress's moderation e-mail for a REST comment held above, which
 * WordPress would have published. Its REST API calls wp_insert_comment(), not wp_new_comment(),
 * so the e-mail a held form post gets (on `comment_post`) is never sent for it. The site's
 * "Email me whenever a comment is held for moderation" decides, as for form posts, and the
 * plugin defers the e-mail of a comment checked during an outage until its retry (as it does
 * for form posts: the comment may be spam).
 *
 * @param WP_Comment      $comment  The inserted comment.
 * @param WP_REST_Request $request  The request.
 * @param bool            $creating Whether the comment is new (false: an update).
 */
function commentguard_notify_rest_held( $comment, $request, $creating ) {
	$held = isset( $GLOBALS['commentguard_rest_held'] ) ? $GLOBALS['commentguard_rest_held'] : null;
	if ( ! $creating || null === $held || ! is_object( $comment )
		|| commentguard_identity( $comment->comment_post_ID, $comment->comment_author_email ) !== $held ) {
		return;
	}
	$GLOBALS['commentguard_rest_held'] = null;
	wp_new_comment_notify_moderator( (int) $comment->comment_ID );
}

/**
 * `wp_insert_comment`: keep the verdict of the check made for this comment with it (shown to
 * moderators, below), and mark it if it was held, so that its approval is reported.
 *
 * @param int        $id      The new comment's id.
 * @param WP_Comment $comment The comment.
 */
function commentguard_remember_check( $id, $comment ) {
	$check = commentguard_check_for( $comment->comment_post_ID, $comment->comment_author_email );
	if ( null === $check ) {
		return;
	}
	$GLOBALS['commentguard_check'] = null;
	add_comment_meta( $id, COMMENTGUARD_VERDICT_META, $check['verdict'], true );
	if ( $check['held'] && '0' === (string) $comment->comment_approved ) {
		add_comment_meta( $id, COMMENTGUARD_HELD_META, time(), true );
	}
}

/**
 * `wp_set_comment_status`: a recheck (the "Check for Spam" button on the Pending list, or the
 * plugin's retry after an outage) moves a comment to Spam on any `true` answer; one that is
 * `unsure` goes back to Pending, where holding put it, marked as held. The plugin deferred the
 * moderation e-mail of a comment checked during an outage until its retry, and sends it only
 * for a ham answer, so a comment the retry holds as `unsure` gets it here.
 *
 * @param int    $id     The comment.
 * @param string $status Its new status.
 */
function commentguard_keep_rechecked_unsure_held( $id, $status ) {
	if ( 'spam' !== $status || empty( $GLOBALS['commentguard_recheck_unsure'] ) || (int) $id !== $GLOBALS['commentguard_recheck_unsure'] ) {
		return;
	}
	$GLOBALS['commentguard_recheck_unsure'] = 0;
	wp_set_comment_status( $id, 'hold' );
	if ( ! get_comment_meta( $id, COMMENTGUARD_HELD_META, true ) ) {
		add_comment_meta( $id, COMMENTGUARD_HELD_META, time(), true );
	}
	// The plugin's mark of a deferred e-mail; it removes the mark after this, unsent.
	if ( ! empty( $GLOBALS['commentguard_recheck_retry'] ) && get_comment_meta( $id, 'akismet_delayed_moderation_email', true ) ) {
		delete_comment_meta( $id, 'akismet_delayed_moderation_email' );
		wp_new_comment_notify_moderator( (int) $id );
	}
}

/**
 * `transition_comment_status`: a moderator approving a held comment corrected an `unsure`
 * verdict the server counted as spam; the plugin reports only comments leaving Spam, so this
 * asks it to send the report (submit-ham) itself. Marking it as spam instead is reported by the
 * plugin. Both are decisions, and end the mark; trashing (which a moderator may undo) does not.
 * Who may decide is as the plugin has it: whoever can edit the comment's post, or moderate.
 *
 * @param string     $new_status The comment's new status.
 * @param string     $old_status Its previous status.
 * @param WP_Comment $comment    The comment.
 */
function commentguard_report_approved( $new_status, $old_status, $comment ) {
	$id = $comment->comment_ID;
	if ( ! in_array( $new_status, array( 'approved', 'spam' ), true ) || ! get_comment_meta( $id, COMMENTGUARD_HELD_META, true )
		|| get_comment_meta( $id, 'akismet_rechecking', true ) ) {
		return;
	}
	if ( 'spam' === $new_status ) {
		delete_comment_meta( $id, COMMENTGUARD_HELD_META );
		return;
	}
	if ( current_user_can( 'edit_post', $comment->comment_post_ID ) || current_user_can( 'moderate_comments' ) ) {
		if ( class_exists( 'Akismet' ) && is_callable( array( 'Akismet', 'submit_nonspam_comment' ) ) ) {
			Akismet::submit_nonspam_comment( $id ); // the mark goes once the server has the report
		}
	}
}

/**
 * `akismet_submit_nonspam_comment`: a ham report the server took ends the held mark; one it did
 * not get (unreachable) keeps it, so that approving the comment again reports it.
 *
 * @param int    $id     The comment.
 * @param string $answer The server's answer.
 */
function commentguard_reported_ham( $id, $answer ) {
	if ( COMMENTGUARD_THANKS === trim( (string) $answer ) ) {
		delete_comment_meta( $id, COMMENTGUARD_HELD_META );
	}
}

/**
 * A report (submit-spam / submit-ham) made whole: the plugin keeps the comment as the check saw
 * it for 15 days only (`akismet_as_submitted`), and a report made later carries no `user_ip`,
 * which CommentGuard refuses. The comment's stored address stands in, and the id of the check
 * kept with the comment (`guid`) tells the server which check the report corrects.
 *
 * @param string $body   The report's body.
 * @param array  $fields Its fields.
 * @return string
 */
function commentguard_complete_report( $body, $fields ) {
	$more = array();
	if ( empty( $fields['user_ip'] ) && ! empty( $fields['comment_author_IP'] ) ) {
		$more['user_ip'] = $fields['comment_author_IP'];
	}
	if ( empty( $fields['guid'] ) && ! empty( $fields['comment_ID'] ) ) {
		$kept = get_comment_meta( (int) $fields['comment_ID'], COMMENTGUARD_VERDICT_META, true );
		if ( is_array( $kept ) && ! empty( $kept['check_id'] ) ) {
			$more['guid'] = $kept['check_id'];
		}
	}
	return $more ? $body . ( '' === $body ? '' : '&' ) . http_build_query( $more ) : $body;
}

/**
 * `comment_text`: in wp-admin, under each comment someone who may moderate it sees,
 * CommentGuard's verdict, score and reasons, so that a held or flagged comment says why.
 *
 * @param string          $text    The comment text as it will be shown.
 * @param WP_Comment|null $comment The comment.
 * @return string
 */
function commentguard_show_verdict( $text, $comment = null ) {
	if ( ! is_admin() || ! is_object( $comment ) || empty( $comment->comment_ID )
		|| ! ( current_user_can( 'edit_post', $comment->comment_post_ID ) || current_user_can( 'moderate_comments' ) ) ) {
		return $text;
	}
	$check = get_comment_meta( $comment->comment_ID, COMMENTGUARD_VERDICT_META, true );
	if ( ! is_array( $check ) || empty( $check['verdict'] ) ) {
		return $text;
	}
	$line = sprintf( 'CommentGuard: %s (score %.2f)', $check['verdict'], (float) $check['score'] );
	if ( empty( $check['enforced'] ) ) {
		$line .= ', log-only';
	}
	if ( ! empty( $check['reasons'] ) ) {
		$line .= ': ' . implode( '; ', $check['reasons'] );
	}
	return $text . "\n" . '<p class="commentguard-verdict"><small>' . esc_html( $line ) . '</small></p>';
}

/**
 * Where an Akismet URL goes on the CommentGuard server, or null for a URL that is not Akismet's.
 *
 * @param string $url         The URL the plugin asked for.
 * @param string $host_header The request's `Host` header, if it set one ('' otherwise).
 * @param string $base        COMMENTGUARD_URL, e.g. `https://commentguard.example.org` (a path prefix is kept).
 * @return array|null `url` (the new URL), `host` (the server's host[:port]) and `label` (a host key, or '').
 */
function commentguard_akismet_target( $url, $host_header, $base ) {
	$from = wp_parse_url( $url );
	$to   = wp_parse_url( $base );
	if ( empty( $from['host'] ) || empty( $to['host'] ) ) {
		return null;
	}
	$host = strtolower( $from['host'] );
	// A call pinned to one of Akismet's addresses names Akismet in its Host header only.
	if ( filter_var( trim( $host, '[]' ), FILTER_VALIDATE_IP ) && '' !== $host_header ) {
		$host = strtolower( preg_replace( '/:\d+$/', '', trim( $host_header ) ) );
	}
	if ( 'rest.akismet.com' === $host ) {
		$label = '';
	} elseif ( preg_match( '/^([a-z0-9-]+)\.rest\.akismet\.com$/', $host, $match ) ) {
		$label = $match[1];
	} else {
		return null;
	}
	// The server's own name must not be Akismet's: the request would come back here forever.
	if ( preg_match( '/(^|\.)rest\.akismet\.com$/', strtolower( $to['host'] ) ) ) {
		return null;
	}
	$server = $to['host'] . ( isset( $to['port'] ) ? ':' . $to['port'] : '' );
	$prefix = isset( $to['path'] ) ? untrailingslashit( $to['path'] ) : '';
	$path   = isset( $from['path'] ) ? $from['path'] : '/';
	$query  = isset( $from['query'] ) ? '?' . $from['query'] : '';
	$scheme = isset( $to['scheme'] ) ? strtolower( $to['scheme'] ) : 'https';
	return array(
		'url'   => $scheme . '://' . $server . $prefix . $path . $query,
		'host'  => $server,
		'label' => $label,
	);
}
