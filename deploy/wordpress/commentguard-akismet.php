<?php
/**
 * Plugin Name: CommentGuard for Akismet
 * Description: Sends the Akismet plugin's API calls to a self-hosted CommentGuard server instead of rest.akismet.com.
 * Version: 1.1.0
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
 * `X-CommentGuard-Verdict` header instead and holds a new `unsure` comment in
 * the moderation queue (Pending), where WordPress notifies the moderators; when a
 * moderator approves it, the plugin is asked to report it as ham, so that
 * CommentGuard learns from the decision. To keep the plugin's behaviour, add
 *
 *     define( 'COMMENTGUARD_HOLD_UNSURE', false );
 *
 * A recheck (the plugin's "Check for Spam" button, or its retry after the
 * server was unreachable) still moves an `unsure` comment to Spam, as the plugin
 * does with any `true` answer.
 *
 * Reasons: each new comment keeps CommentGuard's verdict, score and reasons
 * (comment meta `commentguard_verdict`), and wp-admin shows them to moderators
 * under the comment's text.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

add_filter( 'pre_http_request', 'commentguard_akismet_redirect', 10, 3 );
// After the plugin's own filters (priority 10 on pre_comment_approved, 1 on rest_pre_insert_comment).
add_filter( 'pre_comment_approved', 'commentguard_hold_unsure', 20, 2 );
add_filter( 'rest_pre_insert_comment', 'commentguard_hold_unsure_rest', 20, 1 );
add_action( 'wp_insert_comment', 'commentguard_remember_check', 20, 2 );
add_action( 'transition_comment_status', 'commentguard_report_approved', 20, 3 );
add_filter( 'comment_text', 'commentguard_show_verdict', 99, 2 ); // after wpautop (30)

/** Meta key marking a comment this file held for moderation instead of the Spam queue. */
const COMMENTGUARD_HELD_META = 'commentguard_held_unsure';
/** Meta key keeping CommentGuard's verdict on a comment: tier, score, reasons, check id. */
const COMMENTGUARD_VERDICT_META = 'commentguard_verdict';

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
	$response        = wp_remote_request( $target['url'], $args );
	if ( '/1.1/comment-check' === substr( (string) wp_parse_url( $target['url'], PHP_URL_PATH ), -18 ) ) {
		commentguard_note_verdict( $response, isset( $args['body'] ) ? $args['body'] : '' );
	}
	return $response;
}

/**
 * Whether unsure comments are held for moderation (COMMENTGUARD_HOLD_UNSURE, default true).
 *
 * @return bool
 */
function commentguard_holds_unsure() {
	return ! defined( 'COMMENTGUARD_HOLD_UNSURE' ) || (bool) COMMENTGUARD_HOLD_UNSURE;
}

/**
 * Remember whether the comment just checked is an `unsure` answered `true`, so that the
 * approval filters below hold it instead of letting it go to Spam. Rechecks (their body
 * names a `recheck_reason`) concern comments already stored and are left to the plugin.
 *
 * @param array|WP_Error $response The server's answer to a comment-check.
 * @param array|string   $body     The request body the plugin sent.
 */
function commentguard_note_verdict( $response, $body ) {
	$GLOBALS['commentguard_unsure'] = false;
	$GLOBALS['commentguard_check']  = null;
	if ( is_wp_error( $response ) ) {
		return;
	}
	if ( is_string( $body ) ) {
		parse_str( $body, $fields );
	} else {
		$fields = (array) $body;
	}
	if ( isset( $fields['recheck_reason'] ) && '' !== $fields['recheck_reason'] ) {
		return;
	}
	$verdict = strtolower( trim( (string) wp_remote_retrieve_header( $response, 'x-commentguard-verdict' ) ) );
	if ( '' === $verdict ) {
		return; // Not a CommentGuard answer.
	}
	$reasons                       = json_decode( (string) wp_remote_retrieve_header( $response, 'x-commentguard-reasons' ), true );
	$GLOBALS['commentguard_check'] = array(
		'verdict'  => sanitize_key( $verdict ),
		'score'    => (float) wp_remote_retrieve_header( $response, 'x-commentguard-score' ),
		'reasons'  => is_array( $reasons ) ? array_values( array_filter( $reasons, 'is_string' ) ) : array(),
		'check_id' => sanitize_text_field( (string) wp_remote_retrieve_header( $response, 'x-commentguard-check-id' ) ),
		'enforced' => 'false' !== strtolower( trim( (string) wp_remote_retrieve_header( $response, 'x-commentguard-enforced' ) ) ),
	);
	$GLOBALS['commentguard_unsure'] = commentguard_holds_unsure() && 'unsure' === $verdict
		&& 'true' === trim( (string) wp_remote_retrieve_body( $response ) );
}

/**
 * `pre_comment_approved`: a new comment the plugin sent to Spam on an `unsure` verdict waits
 * in the moderation queue instead (0). Every other outcome passes unchanged.
 *
 * @param int|string|WP_Error $approved What WordPress and the plugin decided.
 * @param array               $commentdata The comment.
 * @return int|string|WP_Error
 */
function commentguard_hold_unsure( $approved, $commentdata ) {
	if ( 'spam' === $approved && ! empty( $GLOBALS['commentguard_unsure'] ) ) {
		$GLOBALS['commentguard_unsure'] = false;
		$GLOBALS['commentguard_held']   = true;
		return 0;
	}
	return $approved;
}

/**
 * `rest_pre_insert_comment`: the same for a comment posted through the REST API, where the
 * plugin sets the status itself after WordPress's approval filter has run.
 *
 * @param array|WP_Error $prepared The comment about to be inserted.
 * @return array|WP_Error
 */
function commentguard_hold_unsure_rest( $prepared ) {
	if ( is_array( $prepared ) && isset( $prepared['comment_approved'] ) ) {
		$prepared['comment_approved'] = commentguard_hold_unsure( $prepared['comment_approved'], $prepared );
	}
	return $prepared;
}

/**
 * `wp_insert_comment`: keep the verdict of the check just made with the comment it was made
 * for (shown to moderators, below), and mark it if it was held, so that its approval can be
 * reported. The check runs just before the insert, in the same request.
 *
 * @param int        $id      The new comment's id.
 * @param WP_Comment $comment The comment.
 */
function commentguard_remember_check( $id, $comment ) {
	if ( ! empty( $GLOBALS['commentguard_check'] ) ) {
		add_comment_meta( $id, COMMENTGUARD_VERDICT_META, $GLOBALS['commentguard_check'], true );
		$GLOBALS['commentguard_check'] = null;
	}
	if ( ! empty( $GLOBALS['commentguard_held'] ) ) {
		$GLOBALS['commentguard_held'] = false;
		add_comment_meta( $id, COMMENTGUARD_HELD_META, time(), true );
	}
}

/**
 * `comment_text`: in wp-admin, under each comment a moderator sees, CommentGuard's verdict,
 * score and reasons, so that a held or flagged comment says why.
 *
 * @param string          $text    The comment text as it will be shown.
 * @param WP_Comment|null $comment The comment.
 * @return string
 */
function commentguard_show_verdict( $text, $comment = null ) {
	if ( ! is_admin() || ! is_object( $comment ) || empty( $comment->comment_ID ) || ! current_user_can( 'moderate_comments' ) ) {
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
 * `transition_comment_status`: a moderator approving a held comment corrected an `unsure`
 * verdict the server counted as spam; the plugin reports only comments leaving Spam, so
 * this asks it to send the report (submit-ham) itself. Marking it as spam instead is
 * reported by the plugin. Either way the mark goes: one decision, one report.
 *
 * @param string     $new_status The comment's new status.
 * @param string     $old_status Its previous status.
 * @param WP_Comment $comment    The comment.
 */
function commentguard_report_approved( $new_status, $old_status, $comment ) {
	if ( $new_status === $old_status || ! get_comment_meta( $comment->comment_ID, COMMENTGUARD_HELD_META, true ) ) {
		return;
	}
	delete_comment_meta( $comment->comment_ID, COMMENTGUARD_HELD_META );
	if ( 'approved' === $new_status && 'unapproved' === $old_status && current_user_can( 'moderate_comments' )
		&& class_exists( 'Akismet' ) && is_callable( array( 'Akismet', 'submit_nonspam_comment' ) ) ) {
		Akismet::submit_nonspam_comment( $comment->comment_ID );
	}
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
