// What the nodes send to Kabar and how they check what Kabar sends back, without n8n:
// `node --test test/` after `npm run build`.
const assert = require('node:assert/strict');
const { createHmac } = require('node:crypto');
const test = require('node:test');

const r = require('../dist/nodes/shared/requests.js');

test('a text message is just to, type and text', () => {
	assert.deepEqual(r.buildSendBody({ to: ' 0812 3456 7890 ', kind: 'text', text: 'Halo' }), {
		to: '0812 3456 7890',
		type: 'text',
		text: 'Halo',
	});
});

test('media by URL or base64, with caption, reply and schedule', () => {
	const body = r.buildSendBody({
		to: '628123@s.whatsapp.net',
		kind: 'image',
		text: 'Foto',
		media: { url: 'https://example.com/a.jpg', filename: '' },
		replyTo: 'ABC',
		sendAt: '2030-01-01T00:00:00Z',
		priority: 'high',
	});
	assert.deepEqual(body, {
		to: '628123@s.whatsapp.net',
		type: 'image',
		text: 'Foto',
		media: { url: 'https://example.com/a.jpg' },
		reply_to: 'ABC',
		send_at: '2030-01-01T00:00:00Z',
		priority: 'high',
	});
	assert.throws(() => r.buildSendBody({ to: 'x', kind: 'document' }), /needs media/);
});

test('location, contacts and polls carry their own objects', () => {
	assert.deepEqual(
		r.buildSendBody({ to: 'x', kind: 'location', location: { latitude: -6.2, longitude: 106.8, name: '' } }).location,
		{ latitude: -6.2, longitude: 106.8 },
	);
	assert.deepEqual(
		r.buildSendBody({ to: 'x', kind: 'contacts', contacts: [{ name: 'Budi', phone: '0812' }, {}] }).contacts,
		[{ name: 'Budi', phone: '0812' }],
	);
	assert.deepEqual(
		r.buildSendBody({ to: 'x', kind: 'poll', poll: { question: 'Kapan?', options: r.splitOptions('Senin\nSelasa\n') } }).poll,
		{ question: 'Kapan?', options: ['Senin', 'Selasa'], multiple: false },
	);
	assert.throws(() => r.buildSendBody({ to: 'x', kind: 'poll', poll: { question: 'q', options: ['a'] } }), /two options/);
	assert.throws(() => r.buildSendBody({ to: 'x', kind: 'text', text: '' }), /needs text/);
	assert.deepEqual(r.splitOptions('a, b,c'), ['a', 'b', 'c']);
});

test('a group is found by its name, ignoring case and spacing', () => {
	const groups = [
		{ jid: '1@g.us', name: 'Tim  Teknisi' },
		{ jid: '2@g.us', name: 'Keluarga' },
	];
	assert.equal(r.groupJidByName(groups, 'tim teknisi'), '1@g.us');
	assert.throws(() => r.groupJidByName(groups, 'Kantor'), /no group named "Kantor"/);
	assert.throws(() => r.groupJidByName([...groups, { jid: '3@g.us', name: 'keluarga' }], 'Keluarga'), /2 groups/);
});

test('idempotency keys and resume URLs', () => {
	assert.equal(r.idempotencyKey('41', 'node-a', 2), 'n8n/41/node-a/2');
	assert.equal(
		r.resumeCallbackUrl('http://127.0.0.1:5678/webhook-waiting/41', 'abc-1'),
		'http://127.0.0.1:5678/webhook-waiting/41/abc-1',
	);
	assert.equal(
		r.resumeCallbackUrl('http://n8n.local/webhook-waiting/41/?signature=x', 'n'),
		'http://n8n.local/webhook-waiting/41/n?signature=x',
	);
});

test('the watch body names the reply watch API fields and drops what is empty', () => {
	const body = r.buildWatchBody({
		sessionId: 's1',
		chat: '0812',
		callbackUrl: 'http://127.0.0.1:5678/webhook-waiting/9/n',
		timeout: 60,
		prompt: 'Ya/tidak?',
		pattern: undefined,
		secret: 'whsec_x',
		idempotencyKey: 'n8n/9/n/0',
	});
	assert.deepEqual(body, {
		session_id: 's1',
		chat: '0812',
		callback_url: 'http://127.0.0.1:5678/webhook-waiting/9/n',
		timeout: 60,
		prompt: 'Ya/tidak?',
		secret: 'whsec_x',
		idempotency_key: 'n8n/9/n/0',
	});
	assert.throws(() => r.buildWatchBody({ ...body, timeout: 0 }), /at least 1/);
});

test('the derived secret is a whsec_ key, different per execution', () => {
	const a = r.deriveSecret('kabar_key', '1', 'n');
	assert.match(a, /^whsec_[A-Za-z0-9+/]{43}=$/);
	assert.equal(Buffer.from(a.slice(6), 'base64').length, 32);
	assert.notEqual(a, r.deriveSecret('kabar_key', '2', 'n'));
	assert.equal(a, r.deriveSecret('kabar_key', '1', 'n'));
});

function sign(secret, id, timestamp, body) {
	const key = Buffer.from(secret.slice(6), 'base64');
	return 'v1,' + createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
}

test('Standard Webhooks signatures: good, tampered, stale, rotated', () => {
	const secret = r.deriveSecret('k', '1', 'n');
	const body = '{"type":"workflow.completed","data":{"result":{"outcome":"reply"}}}';
	const now = 1_800_000_000;
	const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(now), 'webhook-signature': sign(secret, 'msg_1', now, body) };
	assert.equal(r.signatureProblem(secret, headers, Buffer.from(body), now + 10), null);
	assert.equal(r.signatureProblem(secret, headers, body.replace('reply', 'timeout'), now), 'no signature matches');
	assert.match(r.signatureProblem(secret, headers, body, now + 3600), /too old/);
	assert.match(r.signatureProblem(secret, {}, body, now), /missing/);
	const other = r.deriveSecret('k', '2', 'n');
	assert.equal(r.signatureProblem(other, headers, body, now), 'no signature matches');
	const rotated = { ...headers, 'webhook-signature': `v1,AAAA ${headers['webhook-signature']}` };
	assert.equal(r.signatureProblem(secret, rotated, body, now), null);
});

test('the outcome picks the output: reply, timeout, invalid; a failed watch is an error', () => {
	const completed = (result) => ({ type: 'workflow.completed', data: { run_id: 'w1', result } });
	assert.deepEqual(r.outcomeOf(completed({ outcome: 'reply', text: 'ya' })), {
		output: 0,
		json: { outcome: 'reply', text: 'ya', watch_id: 'w1' },
	});
	assert.equal(r.outcomeOf(completed({ outcome: 'timeout', attempts: 0 })).output, 1);
	assert.equal(r.outcomeOf(completed({ outcome: 'invalid', text: 'x', attempts: 3 })).output, 2);
	assert.throws(() => r.outcomeOf({ type: 'workflow.failed', data: { error: 'session gone' } }), /session gone/);
	assert.throws(() => r.outcomeOf({ type: 'message.received', data: {} }), /Not a reply watch/);
});
