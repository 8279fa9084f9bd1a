// The nodes' execute/webhook methods in a small stand-in for n8n's context: which HTTP
// requests they make, with which credentials, and what they output.
const assert = require('node:assert/strict');
const { createHmac } = require('node:crypto');
const test = require('node:test');

const { Kabar } = require('../dist/nodes/Kabar/Kabar.node.js');
const { KabarSendAndWait } = require('../dist/nodes/KabarSendAndWait/KabarSendAndWait.node.js');
const { KabarTrigger } = require('../dist/nodes/KabarTrigger/KabarTrigger.node.js');
const { deriveSecret } = require('../dist/nodes/shared/requests.js');

const CREDENTIALS = { baseUrl: 'http://kabar.test:7308/', apiKey: 'kabar_abc_def' };

function context(params, { answers = [], items = [{ json: {} }], staticData = {}, request } = {}) {
	const calls = [];
	const ctx = {
		calls,
		waitedUntil: null,
		getInputData: () => items,
		getNodeParameter: (name, _i, fallback) => (name in params ? params[name] : fallback),
		getCredentials: async () => CREDENTIALS,
		getExecutionId: () => '77',
		getNode: () => ({ id: 'node-1', name: 'Kabar', type: 'kabar', typeVersion: 1 }),
		getWorkflow: () => ({ id: 'wf1', name: 'Demo' }),
		getWorkflowStaticData: () => staticData,
		getNodeWebhookUrl: () => 'http://127.0.0.1:5678/webhook/abc/webhook',
		continueOnFail: () => false,
		evaluateExpression: (expr) => {
			assert.match(expr, /\$execution\.resumeUrl/);
			return 'http://127.0.0.1:5678/webhook-waiting/77';
		},
		putExecutionToWait: async (date) => {
			ctx.waitedUntil = date;
		},
		getRequestObject: () => request ?? {},
		getHeaderData: () => request?.headers ?? {},
		getBodyData: () => (request ? JSON.parse(request.rawBody) : {}),
		getResponseObject: () => ({
			status(code) {
				ctx.responseStatus = code;
				return this;
			},
			json() {},
		}),
		helpers: {
			httpRequestWithAuthentication: async function (name, options) {
				assert.equal(name, 'kabarApi');
				calls.push(options);
				const answer = answers.shift();
				if (answer instanceof Error) throw answer;
				return answer ?? {};
			},
			returnJsonArray: (json) => [{ json }],
			assertBinaryData: () => ({ mimeType: 'application/pdf', fileName: 'laporan.pdf' }),
			getBinaryDataBuffer: async () => Buffer.from('%PDF-1.4'),
		},
	};
	return ctx;
}

test('send: a text to a phone, with the execution’s idempotency key', async () => {
	const ctx = context(
		{ resource: 'message', operation: 'send', session: 's1', targetKind: 'phone', to: '0812', kind: 'text', text: 'Halo' },
		{ answers: [{ id: 'm1', status: 'queued' }] },
	);
	const [out] = await new Kabar().execute.call(ctx);
	assert.deepEqual(out, [{ json: { id: 'm1', status: 'queued' }, pairedItem: { item: 0 } }]);
	const [call] = ctx.calls;
	assert.equal(call.method, 'POST');
	assert.equal(call.url, 'http://kabar.test:7308/api/v1/sessions/s1/messages');
	assert.deepEqual(call.body, { to: '0812', type: 'text', text: 'Halo' });
	assert.equal(call.headers['Idempotency-Key'], 'n8n/77/node-1/0');
});

test('send: a document from a binary property, to a group found by name', async () => {
	const ctx = context(
		{ resource: 'message', operation: 'send', session: 's1', targetKind: 'groupName', to: 'Tim Teknisi', kind: 'document', mediaSource: 'binary', binaryProperty: 'data', text: 'Laporan' },
		{ answers: [[{ jid: '99@g.us', name: 'Tim Teknisi' }], { id: 'm2' }] },
	);
	await new Kabar().execute.call(ctx);
	assert.equal(ctx.calls[0].url, 'http://kabar.test:7308/api/v1/sessions/s1/groups');
	assert.deepEqual(ctx.calls[1].body, {
		to: '99@g.us',
		type: 'document',
		text: 'Laporan',
		media: { base64: Buffer.from('%PDF-1.4').toString('base64'), mimetype: 'application/pdf', filename: 'laporan.pdf' },
	});
});

test('look-ups and tickets call their endpoints', async () => {
	const ctx = context(
		{ resource: 'contact', operation: 'isRegistered', session: 's1', phone: '0812' },
		{ answers: [{ results: [{ query: '0812', registered: true }] }] },
	);
	const [out] = await new Kabar().execute.call(ctx);
	assert.deepEqual(ctx.calls[0].body, { phones: ['0812'] });
	assert.equal(out[0].json.registered, true);

	const t = context(
		{ resource: 'ticket', operation: 'setStatus', number: 'BRT2409001', status: 'done', note: 'Selesai' },
		{ answers: [{ number: 'BRT2409001', status: 'done' }] },
	);
	await new Kabar().execute.call(t);
	assert.equal(t.calls[0].url, 'http://kabar.test:7308/api/v1/tickets/BRT2409001/status');
	assert.deepEqual(t.calls[0].body, { status: 'done', note: 'Selesai' });

	const list = context({ resource: 'ticket', operation: 'getAll', filters: { status: 'new' } }, {
		answers: [{ items: [{ number: 'A' }], next_cursor: 'c2' }, { items: [{ number: 'B' }], next_cursor: null }],
	});
	const [tickets] = await new Kabar().execute.call(list);
	assert.deepEqual(tickets.map((i) => i.json.number), ['A', 'B']);
	assert.deepEqual(list.calls[1].qs, { status: 'new', limit: 200, cursor: 'c2' });
});

test('send and wait: creates a reply watch to the resume URL, then waits', async () => {
	const ctx = context(
		{ session: 's1', targetKind: 'phone', to: '0812', prompt: 'Ya?', timeout: 120, pattern: '^(ya|tidak)$', reprompt: 'ya/tidak', maxAttempts: 2 },
		{ answers: [{ id: 'w1', status: 'waiting' }], items: [{ json: { a: 1 } }] },
	);
	const result = await new KabarSendAndWait().execute.call(ctx);
	const [call] = ctx.calls;
	assert.equal(call.url, 'http://kabar.test:7308/api/v1/reply-watches');
	assert.deepEqual(call.body, {
		session_id: 's1',
		chat: '0812',
		callback_url: 'http://127.0.0.1:5678/webhook-waiting/77/node-1',
		timeout: 120,
		prompt: 'Ya?',
		pattern: '^(ya|tidak)$',
		reprompt: 'ya/tidak',
		max_attempts: 2,
		secret: deriveSecret('kabar_abc_def', '77', 'node-1'),
		idempotency_key: 'n8n/77/node-1/0',
	});
	assert.equal(ctx.waitedUntil.getUTCFullYear(), 3000);
	assert.deepEqual(result, [[{ json: { a: 1 } }]]);
});

function signed(secret, envelope) {
	const rawBody = JSON.stringify(envelope);
	const timestamp = String(Math.floor(Date.now() / 1000));
	const key = Buffer.from(secret.slice(6), 'base64');
	const signature = createHmac('sha256', key).update(`msg.${timestamp}.${rawBody}`).digest('base64');
	return { rawBody, headers: { 'webhook-id': 'msg', 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` } };
}

test('send and wait: a signed callback resumes with its outcome; a forged one is refused', async () => {
	const secret = deriveSecret('kabar_abc_def', '77', 'node-1');
	const envelope = { type: 'workflow.completed', data: { run_id: 'w1', result: { outcome: 'timeout', attempts: 0 } } };
	const ctx = context({}, { request: signed(secret, envelope) });
	const answer = await new KabarSendAndWait().webhook.call(ctx);
	assert.deepEqual(answer.workflowData, [[{ json: { outcome: 'timeout', attempts: 0, watch_id: 'w1' } }]]);

	const forged = context({}, { request: signed(deriveSecret('other', '77', 'node-1'), envelope) });
	const refused = await new KabarSendAndWait().webhook.call(forged);
	assert.deepEqual(refused, { noWebhookResponse: true });
	assert.equal(forged.responseStatus, 401);
});

test('trigger: registers a webhook on activation, removes it on deactivation, verifies', async () => {
	const staticData = {};
	const params = { session: 's1', events: ['message.received'], ignoreFromMe: true };
	const hooks = new KabarTrigger().webhookMethods.default;
	const on = context(params, { staticData, answers: [{ id: 5, secret: 'whsec_' + Buffer.alloc(32, 1).toString('base64') }] });
	assert.equal(await hooks.create.call(on), true);
	assert.deepEqual(on.calls[0].body, {
		url: 'http://127.0.0.1:5678/webhook/abc/webhook',
		session_id: 's1',
		events: ['message.received'],
		name: 'n8n: Demo',
	});
	assert.equal(staticData.webhookId, 5);

	const envelope = { type: 'message.received', data: { message: { text: 'halo', from_me: false } } };
	const got = context(params, { staticData, request: signed(staticData.secret, envelope) });
	const answer = await new KabarTrigger().webhook.call(got);
	assert.deepEqual(answer.workflowData, [[{ json: envelope }]]);

	const off = context(params, { staticData, answers: [{}] });
	assert.equal(await hooks.delete.call(off), true);
	assert.equal(off.calls[0].method, 'DELETE');
	assert.equal(off.calls[0].url, 'http://kabar.test:7308/api/v1/webhooks/5');
	assert.equal(staticData.webhookId, undefined);
});
