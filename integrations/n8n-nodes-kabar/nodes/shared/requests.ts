/**
 * What the Kabar nodes send and check, as plain functions of their inputs (no n8n
 * context): request bodies, idempotency keys, resume URLs, Standard Webhooks signatures.
 * The nodes gather parameters and call these; test/requests.test.js checks them.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type TargetKind = 'phone' | 'jid' | 'groupName';

export const MESSAGE_KINDS = [
	'text', 'image', 'video', 'audio', 'voice', 'document', 'sticker', 'location', 'contacts',
	'poll',
] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
export const MEDIA_KINDS: ReadonlySet<string> = new Set([
	'image', 'video', 'audio', 'voice', 'document', 'sticker',
]);

export interface SendInput {
	to: string;
	kind: MessageKind;
	text?: string;
	media?: { url?: string; base64?: string; mimetype?: string; filename?: string };
	location?: { latitude: number; longitude: number; name?: string; address?: string };
	contacts?: Array<{ name?: string; phone?: string }>;
	poll?: { question: string; options: string[]; multiple?: boolean };
	replyTo?: string;
	mentions?: string[];
	sendAt?: string;
	priority?: string;
	linkPreview?: boolean;
}

/** The body of POST /api/v1/sessions/{id}/messages: only what was given. */
export function buildSendBody(input: SendInput): Record<string, unknown> {
	const body: Record<string, unknown> = { to: input.to.trim(), type: input.kind };
	if (input.text) body.text = input.text;
	if (MEDIA_KINDS.has(input.kind)) {
		const media = input.media ?? {};
		if (!media.url && !media.base64) {
			throw new Error(`A ${input.kind} message needs media: a URL or a binary property.`);
		}
		body.media = dropEmpty({ ...media });
	}
	if (input.kind === 'location') {
		if (!input.location) throw new Error('A location message needs latitude and longitude.');
		body.location = dropEmpty({ ...input.location });
	}
	if (input.kind === 'contacts') {
		const contacts = (input.contacts ?? []).filter((c) => c.phone || c.name);
		if (!contacts.length) throw new Error('A contacts message needs at least one contact.');
		body.contacts = contacts.map((c) => dropEmpty({ ...c }));
	}
	if (input.kind === 'poll') {
		const options = (input.poll?.options ?? []).map((o) => o.trim()).filter(Boolean);
		if (!input.poll?.question || options.length < 2) {
			throw new Error('A poll needs a question and at least two options.');
		}
		body.poll = { question: input.poll.question, options, multiple: !!input.poll.multiple };
	}
	if (input.kind === 'text' && !input.text) throw new Error('A text message needs text.');
	if (input.replyTo) body.reply_to = input.replyTo;
	if (input.mentions?.length) body.mentions = input.mentions;
	if (input.sendAt) body.send_at = input.sendAt;
	if (input.priority && input.priority !== 'normal') body.priority = input.priority;
	if (input.linkPreview) body.link_preview = true;
	return body;
}

/** Options one per line (or comma separated when on one line). */
export function splitOptions(text: string): string[] {
	const lines = text.includes('\n') ? text.split('\n') : text.split(',');
	return lines.map((line) => line.trim()).filter(Boolean);
}

/** The group whose name is ``name`` (case and spacing ignored); its JID. */
export function groupJidByName(groups: Array<{ jid: string; name?: string }>, name: string): string {
	const wanted = normalise(name);
	const found = groups.filter((g) => normalise(g.name ?? '') === wanted);
	if (found.length === 1) return found[0].jid;
	if (found.length > 1) {
		throw new Error(`${found.length} groups are named "${name}"; give the group's JID instead.`);
	}
	throw new Error(`The session is in no group named "${name}".`);
}

/** The idempotency key of one item's send: the same within an execution (so n8n's
 * "Retry On Fail" never sends twice), new in the next execution. */
export function idempotencyKey(executionId: string, nodeId: string, itemIndex: number): string {
	return `n8n/${executionId}/${nodeId}/${itemIndex}`;
}

/** Where Kabar POSTs a reply watch's outcome: the execution's resume URL with the node's
 * id as its last path segment (what n8n's waiting webhooks match), query kept. */
export function resumeCallbackUrl(resumeUrl: string, nodeId: string): string {
	const url = new URL(resumeUrl);
	url.pathname = `${url.pathname.replace(/\/+$/, '')}/${encodeURIComponent(nodeId)}`;
	return url.toString();
}

/** The signing secret of one execution's reply watch, derived from the API key: n8n
 * need not store it while the execution waits, and it differs for every execution, so a
 * callback meant for one cannot resume another. */
export function deriveSecret(apiKey: string, executionId: string, nodeId: string): string {
	const mac = createHmac('sha256', apiKey)
		.update(`kabar-reply-watch/${executionId}/${nodeId}`)
		.digest('base64');
	return `whsec_${mac}`;
}

export interface WatchInput {
	sessionId: string;
	chat: string;
	callbackUrl: string;
	timeout: number;
	prompt?: string;
	pattern?: string;
	reprompt?: string;
	maxAttempts?: number;
	secret: string;
	idempotencyKey: string;
}

/** The body of POST /api/v1/reply-watches. */
export function buildWatchBody(input: WatchInput): Record<string, unknown> {
	if (!Number.isInteger(input.timeout) || input.timeout < 1) {
		throw new Error('The timeout is a whole number of seconds, at least 1.');
	}
	return dropEmpty({
		session_id: input.sessionId,
		chat: input.chat.trim(),
		callback_url: input.callbackUrl,
		timeout: input.timeout,
		prompt: input.prompt,
		pattern: input.pattern,
		reprompt: input.reprompt,
		max_attempts: input.maxAttempts,
		secret: input.secret,
		idempotency_key: input.idempotencyKey,
	});
}

export const OUTCOMES = ['reply', 'timeout', 'invalid'] as const;

/** The item a reply watch's callback makes (``outcome``: reply, timeout or invalid, and
 * its index in OUTCOMES). A failed watch (its prompt could not be sent) is an error. */
export function outcomeOf(envelope: any): { output: number; json: Record<string, unknown> } {
	const data = envelope?.data ?? {};
	if (envelope?.type === 'workflow.failed') {
		throw new Error(`Kabar could not run the reply watch: ${data.error ?? 'unknown error'}`);
	}
	const result = data.result ?? {};
	const output = OUTCOMES.indexOf(result.outcome);
	if (envelope?.type !== 'workflow.completed' || output < 0) {
		throw new Error('Not a reply watch callback from Kabar.');
	}
	return { output, json: { ...result, watch_id: data.run_id } };
}

/** Verify a Standard Webhooks signature (webhook-id, webhook-timestamp,
 * webhook-signature: "v1,<base64>" entries separated by spaces). Returns the reason it
 * fails, or null when it holds. */
export function signatureProblem(
	secret: string,
	headers: Record<string, string | string[] | undefined>,
	rawBody: Buffer | string,
	nowSeconds: number,
	toleranceSeconds = 300,
): string | null {
	const header = (name: string) => {
		const value = headers[name] ?? headers[name.toLowerCase()];
		return Array.isArray(value) ? value[0] : value;
	};
	const id = header('webhook-id');
	const timestamp = header('webhook-timestamp');
	const signatures = header('webhook-signature');
	if (!id || !timestamp || !signatures) return 'missing webhook-* headers';
	const at = Number(timestamp);
	if (!Number.isFinite(at) || Math.abs(nowSeconds - at) > toleranceSeconds) {
		return 'timestamp too old or in the future';
	}
	const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
	const body = typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8');
	const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
	for (const entry of signatures.split(' ')) {
		const [version, signature] = entry.split(',', 2);
		if (version !== 'v1' || !signature) continue;
		const given = Buffer.from(signature, 'base64');
		if (given.length === expected.length && timingSafeEqual(given, expected)) return null;
	}
	return 'no signature matches';
}

function normalise(text: string): string {
	return text.trim().replace(/\s+/g, ' ').toLowerCase();
}

function dropEmpty<T extends Record<string, unknown>>(value: T): Record<string, unknown> {
	return Object.fromEntries(
		Object.entries(value).filter(([, v]) => v !== undefined && v !== null && v !== ''),
	);
}
