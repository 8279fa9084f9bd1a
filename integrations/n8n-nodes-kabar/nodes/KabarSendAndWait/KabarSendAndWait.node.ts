import type {
	IDataObject,
	IExecuteFunctions,
	INodeExecutionData,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError, WAIT_INDEFINITELY } from 'n8n-workflow';

import { resolveTarget, sessionField, targetFields } from '../shared/fields';
import {
	buildWatchBody,
	deriveSecret,
	idempotencyKey,
	outcomeOf,
	resumeCallbackUrl,
	signatureProblem,
} from '../shared/requests';
import { CREDENTIALS, getSessions, kabarRequest } from '../shared/transport';

/**
 * Send and Wait for Reply: sends the prompt through Kabar and waits, in n8n's waiting
 * state, for the chat's answer in WhatsApp. Kabar keeps the wait (a reply watch, stored,
 * surviving restarts) and resumes the execution by POSTing the outcome, signed, to its
 * resume URL. The item that comes out says which: `outcome` is `reply` (with `text`,
 * `groups`, `named`, `message`), `timeout` (nobody answered in time) or `invalid` (too many
 * replies that did not match the pattern); branch on it with a Switch node. Same semantics
 * as Kabar's wait_for_reply workflow node.
 *
 * One output, not three: n8n 1.x resumes a waiting node by passing the webhook's data
 * through it as a disabled node, which keeps only the first output (WorkflowExecute
 * handleDisabledNode), so items on a second or third output would be lost.
 */
export class KabarSendAndWait implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Kabar Send and Wait for Reply',
		name: 'kabarSendAndWait',
		icon: 'file:kabar.svg',
		group: ['output'],
		version: 1,
		subtitle: '={{"wait for " + $parameter["to"]}}',
		description:
			'Ask on WhatsApp and wait for the answer in the chat: the execution waits until the contact replies or the timeout passes; outcome says which',
		defaults: { name: 'Send and Wait for Reply' },
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: CREDENTIALS, required: true }],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				responseData: '',
				path: '={{ $nodeId }}',
				restartWebhook: true,
				isFullPath: true,
			},
		],
		properties: [
			{
				displayName:
					'Kabar must be able to reach n8n’s resume URL (set WEBHOOK_URL in n8n; for an n8n on a private address or localhost, list it in KABAR_WEBHOOK_ALLOW)',
				name: 'notice',
				type: 'notice',
				default: '',
			},
			sessionField(),
			...targetFields(),
			{
				displayName: 'Prompt',
				name: 'prompt',
				type: 'string',
				typeOptions: { rows: 3 },
				default: '',
				description: 'The question, sent first (leave empty to only wait)',
			},
			{
				displayName: 'Timeout (Seconds)',
				name: 'timeout',
				type: 'number',
				typeOptions: { minValue: 1 },
				default: 3600,
				description: 'How long to wait for a reply, again after each re-prompt; then the outcome is timeout',
			},
			{
				displayName: 'Pattern',
				name: 'pattern',
				type: 'string',
				default: '',
				placeholder: '^[1-5]$',
				description:
					'A regular expression (Python syntax) the whole trimmed reply must match; empty accepts any reply',
			},
			{
				displayName: 'Re-Prompt',
				name: 'reprompt',
				type: 'string',
				default: '',
				description: 'Sent after a reply that does not match, before waiting again',
				displayOptions: { hide: { pattern: [''] } },
			},
			{
				displayName: 'Max Attempts',
				name: 'maxAttempts',
				type: 'number',
				typeOptions: { minValue: 1, maxValue: 20 },
				default: 3,
				description: 'Replies that do not match before the outcome is invalid',
				displayOptions: { hide: { pattern: [''] } },
			},
		],
	};

	methods = { loadOptions: { getSessions } };

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const i = 0; // an execution waits once: the first item asks
		const sessionId = this.getNodeParameter('session', i) as string;
		const credentials = await this.getCredentials(CREDENTIALS);
		const executionId = this.getExecutionId();
		const nodeId = this.getNode().id;
		const resumeUrl = this.evaluateExpression('{{ $execution.resumeUrl }}', i) as string;
		const pattern = this.getNodeParameter('pattern', i, '') as string;
		let body: IDataObject;
		try {
			body = buildWatchBody({
				sessionId,
				chat: await resolveTarget.call(this, sessionId, i),
				callbackUrl: resumeCallbackUrl(resumeUrl, nodeId),
				timeout: this.getNodeParameter('timeout', i) as number,
				prompt: (this.getNodeParameter('prompt', i, '') as string) || undefined,
				pattern: pattern || undefined,
				reprompt: pattern ? (this.getNodeParameter('reprompt', i, '') as string) || undefined : undefined,
				maxAttempts: pattern ? (this.getNodeParameter('maxAttempts', i, 3) as number) : undefined,
				secret: deriveSecret(credentials.apiKey as string, executionId, nodeId),
				idempotencyKey: idempotencyKey(executionId, nodeId, i),
			}) as IDataObject;
		} catch (error) {
			throw new NodeOperationError(this.getNode(), (error as Error).message, { itemIndex: i });
		}
		await kabarRequest.call(this, 'POST', '/api/v1/reply-watches', body, { itemIndex: i });
		// Kabar owns the timeout (and resumes with the Timeout output); n8n only waits.
		await this.putExecutionToWait(WAIT_INDEFINITELY);
		return [this.getInputData()];
	}

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const credentials = await this.getCredentials(CREDENTIALS);
		const secret = deriveSecret(credentials.apiKey as string, this.getExecutionId(), this.getNode().id);
		const request = this.getRequestObject() as any;
		const raw: Buffer | string = request.rawBody ?? JSON.stringify(this.getBodyData());
		const problem = signatureProblem(secret, this.getHeaderData() as any, raw, Date.now() / 1000);
		if (problem) {
			this.getResponseObject().status(401).json({ message: `Kabar signature: ${problem}` });
			return { noWebhookResponse: true };
		}
		const { json } = outcomeOf(this.getBodyData());
		return { webhookResponse: { ok: true }, workflowData: [[{ json: json as IDataObject }]] };
	}
}
