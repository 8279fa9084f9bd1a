import type {
	IDataObject,
	IHookFunctions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';

import { signatureProblem } from '../shared/requests';
import { CREDENTIALS, getSessions, kabarRequest } from '../shared/transport';

/** Kabar's event catalogue (docs/events.md). */
export const EVENTS = [
	'message.received', 'message.sent', 'message.status', 'message.reaction', 'message.edited',
	'message.revoked', 'poll.vote', 'presence.update', 'call.received', 'session.status',
	'group.joined', 'group.left', 'group.participants', 'group.updated', 'ticket.created',
	'ticket.assigned', 'ticket.started', 'ticket.progress', 'ticket.finished', 'ticket.confirmed',
	'ticket.reopened', 'ticket.status', 'ticket.note', 'workflow.completed', 'workflow.failed',
];

export class KabarTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Kabar Trigger',
		name: 'kabarTrigger',
		icon: 'file:kabar.svg',
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["events"].join(", ")}}',
		description:
			'Starts the workflow on Kabar events (a WhatsApp message received, a status, a ticket…): registers a signed Kabar webhook while the workflow is active',
		defaults: { name: 'Kabar Trigger' },
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: CREDENTIALS, required: true }],
		webhooks: [
			{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', path: 'webhook' },
		],
		properties: [
			{
				displayName: 'Session Name or ID',
				name: 'session',
				type: 'options',
				typeOptions: { loadOptionsMethod: 'getSessions' },
				default: '',
				required: true,
				description:
					'Whose events start the workflow. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			},
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				options: EVENTS.map((name) => ({ name, value: name })),
				default: ['message.received'],
				required: true,
			},
			{
				displayName: 'Ignore My Own Messages',
				name: 'ignoreFromMe',
				type: 'boolean',
				default: true,
				description: 'Whether to skip message events of messages the session itself sent',
			},
		],
	};

	methods = { loadOptions: { getSessions } };

	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node');
				if (!data.webhookId) return false;
				try {
					const hook = await kabarRequest.call(this, 'GET', `/api/v1/webhooks/${data.webhookId}`);
					return hook.url === this.getNodeWebhookUrl('default') && hook.enabled;
				} catch {
					delete data.webhookId;
					delete data.secret;
					return false;
				}
			},
			async create(this: IHookFunctions): Promise<boolean> {
				const hook = await kabarRequest.call(this, 'POST', '/api/v1/webhooks', {
					url: this.getNodeWebhookUrl('default'),
					session_id: this.getNodeParameter('session') as string,
					events: this.getNodeParameter('events') as string[],
					name: `n8n: ${this.getWorkflow().name ?? this.getWorkflow().id}`.slice(0, 128),
				});
				const data = this.getWorkflowStaticData('node');
				data.webhookId = hook.id;
				data.secret = hook.secret;
				return true;
			},
			async delete(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node');
				if (data.webhookId) {
					try {
						await kabarRequest.call(this, 'DELETE', `/api/v1/webhooks/${data.webhookId}`);
					} catch (error) {
						if ((error as any)?.httpCode !== '404') return false;
					}
				}
				delete data.webhookId;
				delete data.secret;
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const request = this.getRequestObject() as any;
		const secret = this.getWorkflowStaticData('node').secret as string | undefined;
		const raw: Buffer | string = request.rawBody ?? JSON.stringify(this.getBodyData());
		const problem = secret
			? signatureProblem(secret, this.getHeaderData() as IDataObject as any, raw, Date.now() / 1000)
			: 'the trigger has no secret (activate the workflow again)';
		if (problem) {
			const response = this.getResponseObject();
			response.status(401).json({ message: `Kabar signature: ${problem}` });
			return { noWebhookResponse: true };
		}
		const envelope = this.getBodyData() as IDataObject;
		const message = (envelope.data as IDataObject | undefined)?.message as IDataObject | undefined;
		if (this.getNodeParameter('ignoreFromMe', true) && message?.from_me) {
			return { webhookResponse: { ok: true, ignored: 'from_me' } };
		}
		return { workflowData: [this.helpers.returnJsonArray(envelope)] };
	}
}
