import type {
	IDataObject,
	IExecuteFunctions,
	INodeExecutionData,
	INodeProperties,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import { resolveTarget, sessionField, targetFields } from '../shared/fields';
import {
	buildSendBody,
	idempotencyKey,
	MEDIA_KINDS,
	type MessageKind,
	splitOptions,
} from '../shared/requests';
import { CREDENTIALS, getSessions, kabarList, kabarRequest } from '../shared/transport';

const TICKET_STATUSES = ['new', 'assigned', 'in_progress', 'pending', 'done', 'confirmed'];

const show = (resource: string, operation: string[], more: Record<string, string[]> = {}) => ({
	resource: [resource],
	operation,
	...more,
});

const messageFields: INodeProperties[] = [
	sessionField(show('message', ['send', 'react'])),
	...targetFields(show('message', ['send'])),
	{
		displayName: 'Message Type',
		name: 'kind',
		type: 'options',
		displayOptions: { show: show('message', ['send']) },
		options: [
			{ name: 'Audio', value: 'audio' },
			{ name: 'Contacts', value: 'contacts' },
			{ name: 'Document', value: 'document' },
			{ name: 'Image', value: 'image' },
			{ name: 'Location', value: 'location' },
			{ name: 'Poll', value: 'poll' },
			{ name: 'Sticker', value: 'sticker' },
			{ name: 'Text', value: 'text' },
			{ name: 'Video', value: 'video' },
			{ name: 'Voice Note', value: 'voice' },
		],
		default: 'text',
	},
	{
		displayName: 'Text',
		name: 'text',
		type: 'string',
		typeOptions: { rows: 3 },
		default: '',
		description: 'The message, or the caption of media',
		displayOptions: {
			show: show('message', ['send'], { kind: ['text', 'image', 'video', 'document'] }),
		},
	},
	{
		displayName: 'Media From',
		name: 'mediaSource',
		type: 'options',
		options: [
			{ name: 'URL', value: 'url', description: 'Kabar fetches it' },
			{ name: 'Binary Property', value: 'binary', description: 'A file from an earlier node' },
		],
		default: 'url',
		displayOptions: {
			show: show('message', ['send'], { kind: [...MEDIA_KINDS] }),
		},
	},
	{
		displayName: 'Media URL',
		name: 'mediaUrl',
		type: 'string',
		default: '',
		placeholder: 'https://example.com/photo.jpg',
		displayOptions: {
			show: show('message', ['send'], { kind: [...MEDIA_KINDS], mediaSource: ['url'] }),
		},
	},
	{
		displayName: 'Input Binary Field',
		name: 'binaryProperty',
		type: 'string',
		default: 'data',
		displayOptions: {
			show: show('message', ['send'], { kind: [...MEDIA_KINDS], mediaSource: ['binary'] }),
		},
	},
	{
		displayName: 'File Name',
		name: 'filename',
		type: 'string',
		default: '',
		description: 'Shown to the recipient (documents); default: the file’s own name',
		displayOptions: { show: show('message', ['send'], { kind: ['document'] }) },
	},
	{
		displayName: 'Latitude',
		name: 'latitude',
		type: 'number',
		typeOptions: { numberPrecision: 6 },
		default: 0,
		displayOptions: { show: show('message', ['send'], { kind: ['location'] }) },
	},
	{
		displayName: 'Longitude',
		name: 'longitude',
		type: 'number',
		typeOptions: { numberPrecision: 6 },
		default: 0,
		displayOptions: { show: show('message', ['send'], { kind: ['location'] }) },
	},
	{
		displayName: 'Place Name',
		name: 'placeName',
		type: 'string',
		default: '',
		displayOptions: { show: show('message', ['send'], { kind: ['location'] }) },
	},
	{
		displayName: 'Address',
		name: 'address',
		type: 'string',
		default: '',
		displayOptions: { show: show('message', ['send'], { kind: ['location'] }) },
	},
	{
		displayName: 'Contacts',
		name: 'contacts',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true },
		default: {},
		displayOptions: { show: show('message', ['send'], { kind: ['contacts'] }) },
		options: [
			{
				name: 'contact',
				displayName: 'Contact',
				values: [
					{ displayName: 'Name', name: 'name', type: 'string', default: '' },
					{ displayName: 'Phone', name: 'phone', type: 'string', default: '' },
				],
			},
		],
	},
	{
		displayName: 'Question',
		name: 'pollQuestion',
		type: 'string',
		default: '',
		displayOptions: { show: show('message', ['send'], { kind: ['poll'] }) },
	},
	{
		displayName: 'Options',
		name: 'pollOptions',
		type: 'string',
		typeOptions: { rows: 4 },
		default: '',
		description: 'One per line (or separated by commas), at least two',
		displayOptions: { show: show('message', ['send'], { kind: ['poll'] }) },
	},
	{
		displayName: 'Allow Several Answers',
		name: 'pollMultiple',
		type: 'boolean',
		default: false,
		displayOptions: { show: show('message', ['send'], { kind: ['poll'] }) },
	},
	{
		displayName: 'Options',
		name: 'sendOptions',
		type: 'collection',
		placeholder: 'Add Option',
		default: {},
		displayOptions: { show: show('message', ['send']) },
		options: [
			{
				displayName: 'Reply To (Message ID)',
				name: 'replyTo',
				type: 'string',
				default: '',
				description: 'Quote this message: Kabar’s message ID or WhatsApp’s',
			},
			{
				displayName: 'Mentions',
				name: 'mentions',
				type: 'string',
				default: '',
				description: 'Phone numbers or JIDs to mention, separated by commas',
			},
			{
				displayName: 'Send At',
				name: 'sendAt',
				type: 'dateTime',
				default: '',
				description: 'Schedule the message',
			},
			{
				displayName: 'Priority',
				name: 'priority',
				type: 'options',
				options: [
					{ name: 'High', value: 'high' },
					{ name: 'Normal', value: 'normal' },
					{ name: 'Low', value: 'low' },
				],
				default: 'normal',
			},
			{ displayName: 'Link Preview', name: 'linkPreview', type: 'boolean', default: false },
		],
	},
	{
		displayName: 'Message ID',
		name: 'messageId',
		type: 'string',
		default: '',
		required: true,
		description: 'The message to react to (Kabar’s ID or WhatsApp’s)',
		displayOptions: { show: show('message', ['react']) },
	},
	{
		displayName: 'Emoji',
		name: 'emoji',
		type: 'string',
		default: '👍',
		description: 'Empty removes the reaction',
		displayOptions: { show: show('message', ['react']) },
	},
];

const contactFields: INodeProperties[] = [
	sessionField(show('contact', ['isRegistered', 'profilePicture'])),
	{
		displayName: 'Phone Number',
		name: 'phone',
		type: 'string',
		default: '',
		required: true,
		placeholder: '0812 3456 7890',
		displayOptions: { show: show('contact', ['isRegistered', 'profilePicture']) },
	},
];

const groupFields: INodeProperties[] = [sessionField(show('group', ['getAll']))];

const ticketNumber: INodeProperties = {
	displayName: 'Tracking Number',
	name: 'number',
	type: 'string',
	default: '',
	required: true,
	placeholder: 'BRT2409001',
	displayOptions: {
		show: show('ticket', ['get', 'assign', 'progress', 'setStatus', 'addNote']),
	},
};

const ticketFields: INodeProperties[] = [
	ticketNumber,
	{
		displayName: 'Problem',
		name: 'text',
		type: 'string',
		typeOptions: { rows: 3 },
		default: '',
		required: true,
		displayOptions: { show: show('ticket', ['create']) },
	},
	{
		displayName: 'Reporter Phone',
		name: 'reporterPhone',
		type: 'string',
		default: '',
		displayOptions: { show: show('ticket', ['create']) },
	},
	{
		displayName: 'Additional Fields',
		name: 'ticketFields',
		type: 'collection',
		placeholder: 'Add Field',
		default: {},
		displayOptions: { show: show('ticket', ['create']) },
		options: [
			{ displayName: 'Category', name: 'category', type: 'string', default: 'request' },
			{ displayName: 'Reporter Name', name: 'reporter_name', type: 'string', default: '' },
			{
				displayName: 'Session ID',
				name: 'session_id',
				type: 'string',
				default: '',
				description: 'The session the reporter is told through',
			},
		],
	},
	{
		displayName: 'Assignee (User ID)',
		name: 'assignee',
		type: 'number',
		default: 0,
		required: true,
		displayOptions: { show: show('ticket', ['assign']) },
	},
	{
		displayName: 'Status',
		name: 'status',
		type: 'options',
		options: TICKET_STATUSES.map((value) => ({ name: value, value })),
		default: 'in_progress',
		displayOptions: { show: show('ticket', ['setStatus']) },
	},
	{
		displayName: 'Note',
		name: 'note',
		type: 'string',
		typeOptions: { rows: 2 },
		default: '',
		displayOptions: { show: show('ticket', ['assign', 'progress', 'setStatus', 'addNote']) },
	},
	{
		displayName: 'Filters',
		name: 'filters',
		type: 'collection',
		placeholder: 'Add Filter',
		default: {},
		displayOptions: { show: show('ticket', ['getAll']) },
		options: [
			{
				displayName: 'Status',
				name: 'status',
				type: 'options',
				options: TICKET_STATUSES.map((value) => ({ name: value, value })),
				default: 'new',
			},
			{ displayName: 'Reporter', name: 'reporter', type: 'string', default: '' },
			{ displayName: 'Search', name: 'q', type: 'string', default: '' },
		],
	},
];

export class Kabar implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Kabar',
		name: 'kabar',
		icon: 'file:kabar.svg',
		group: ['output'],
		version: 1,
		subtitle: '={{$parameter["operation"] + ": " + $parameter["resource"]}}',
		description: 'Send WhatsApp messages, look people and groups up and work helpdesk tickets through Kabar',
		defaults: { name: 'Kabar' },
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: CREDENTIALS, required: true }],
		properties: [
			{
				displayName: 'Resource',
				name: 'resource',
				type: 'options',
				noDataExpression: true,
				options: [
					{ name: 'Contact', value: 'contact' },
					{ name: 'Group', value: 'group' },
					{ name: 'Message', value: 'message' },
					{ name: 'Ticket', value: 'ticket' },
				],
				default: 'message',
			},
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				displayOptions: { show: { resource: ['message'] } },
				options: [
					{ name: 'Send', value: 'send', action: 'Send a message' },
					{ name: 'React', value: 'react', action: 'React to a message' },
				],
				default: 'send',
			},
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				displayOptions: { show: { resource: ['contact'] } },
				options: [
					{ name: 'Is Registered', value: 'isRegistered', action: 'Check a number is on WhatsApp' },
					{ name: 'Profile Picture', value: 'profilePicture', action: 'Get a profile picture' },
				],
				default: 'isRegistered',
			},
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				displayOptions: { show: { resource: ['group'] } },
				options: [{ name: 'Get Many', value: 'getAll', action: 'List the session’s groups' }],
				default: 'getAll',
			},
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				displayOptions: { show: { resource: ['ticket'] } },
				options: [
					{ name: 'Add Note', value: 'addNote', action: 'Add a note to a ticket' },
					{ name: 'Add Progress', value: 'progress', action: 'Report progress on a ticket' },
					{ name: 'Assign', value: 'assign', action: 'Assign a ticket' },
					{ name: 'Create', value: 'create', action: 'Create a ticket' },
					{ name: 'Get', value: 'get', action: 'Get a ticket' },
					{ name: 'Get Many', value: 'getAll', action: 'List tickets' },
					{ name: 'Set Status', value: 'setStatus', action: 'Set a ticket s status' },
				],
				default: 'get',
			},
			...messageFields,
			...contactFields,
			...groupFields,
			...ticketFields,
		],
	};

	methods = { loadOptions: { getSessions } };

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const out: INodeExecutionData[] = [];
		for (let i = 0; i < items.length; i++) {
			try {
				const result = await run.call(this, i);
				const rows = Array.isArray(result) ? result : [result];
				for (const json of rows) out.push({ json, pairedItem: { item: i } });
			} catch (error) {
				if (this.continueOnFail()) {
					out.push({ json: { error: (error as Error).message }, pairedItem: { item: i } });
					continue;
				}
				throw error;
			}
		}
		return [out];
	}
}

async function run(this: IExecuteFunctions, i: number): Promise<IDataObject | IDataObject[]> {
	const resource = this.getNodeParameter('resource', i) as string;
	const operation = this.getNodeParameter('operation', i) as string;
	const session = () => encodeURIComponent(this.getNodeParameter('session', i) as string);
	if (resource === 'message' && operation === 'send') return send.call(this, i);
	if (resource === 'message' && operation === 'react') {
		const id = encodeURIComponent(this.getNodeParameter('messageId', i) as string);
		return kabarRequest.call(
			this,
			'POST',
			`/api/v1/sessions/${session()}/messages/${id}/react`,
			{ emoji: this.getNodeParameter('emoji', i) as string },
			{ headers: { 'Idempotency-Key': key(this, i) }, itemIndex: i },
		);
	}
	if (resource === 'contact') {
		const phone = (this.getNodeParameter('phone', i) as string).trim();
		if (operation === 'isRegistered') {
			const answer = await kabarRequest.call(
				this,
				'POST',
				`/api/v1/sessions/${session()}/contacts/check`,
				{ phones: [phone] },
				{ itemIndex: i },
			);
			return answer.results[0];
		}
		return kabarRequest.call(
			this,
			'GET',
			`/api/v1/sessions/${session()}/contacts/${encodeURIComponent(phone)}/picture`,
			undefined,
			{ itemIndex: i },
		);
	}
	if (resource === 'group') {
		return kabarRequest.call(this, 'GET', `/api/v1/sessions/${session()}/groups`, undefined, {
			itemIndex: i,
		});
	}
	if (resource === 'ticket') return ticket.call(this, operation, i);
	throw new NodeOperationError(this.getNode(), `Unknown operation ${resource}.${operation}`, {
		itemIndex: i,
	});
}

function key(context: IExecuteFunctions, i: number): string {
	return idempotencyKey(context.getExecutionId(), context.getNode().id, i);
}

async function send(this: IExecuteFunctions, i: number): Promise<IDataObject> {
	const sessionId = this.getNodeParameter('session', i) as string;
	const kind = this.getNodeParameter('kind', i) as MessageKind;
	const param = (name: string, fallback: unknown = '') => this.getNodeParameter(name, i, fallback);
	const options = param('sendOptions', {}) as IDataObject;
	let media: { url?: string; base64?: string; mimetype?: string; filename?: string } | undefined;
	if (MEDIA_KINDS.has(kind)) {
		if (param('mediaSource', 'url') === 'binary') {
			const property = param('binaryProperty', 'data') as string;
			const binary = this.helpers.assertBinaryData(i, property);
			const buffer = await this.helpers.getBinaryDataBuffer(i, property);
			media = {
				base64: buffer.toString('base64'),
				mimetype: binary.mimeType,
				filename: (param('filename') as string) || binary.fileName,
			};
		} else {
			media = { url: param('mediaUrl') as string, filename: (param('filename') as string) || undefined };
		}
	}
	let body: IDataObject;
	try {
		body = buildSendBody({
			to: await resolveTarget.call(this, sessionId, i),
			kind,
			text: ['text', 'image', 'video', 'document'].includes(kind) ? (param('text') as string) : undefined,
			media,
			location:
				kind === 'location'
					? {
							latitude: param('latitude', 0) as number,
							longitude: param('longitude', 0) as number,
							name: param('placeName') as string,
							address: param('address') as string,
						}
					: undefined,
			contacts:
				kind === 'contacts'
					? (((param('contacts', {}) as IDataObject).contact as IDataObject[]) ?? []).map((c) => ({
							name: c.name as string,
							phone: c.phone as string,
						}))
					: undefined,
			poll:
				kind === 'poll'
					? {
							question: param('pollQuestion') as string,
							options: splitOptions(param('pollOptions') as string),
							multiple: param('pollMultiple', false) as boolean,
						}
					: undefined,
			replyTo: options.replyTo as string,
			mentions: options.mentions ? splitOptions(options.mentions as string) : undefined,
			sendAt: options.sendAt as string,
			priority: options.priority as string,
			linkPreview: options.linkPreview as boolean,
		}) as IDataObject;
	} catch (error) {
		throw new NodeOperationError(this.getNode(), (error as Error).message, { itemIndex: i });
	}
	return kabarRequest.call(this, 'POST', `/api/v1/sessions/${encodeURIComponent(sessionId)}/messages`, body, {
		headers: { 'Idempotency-Key': key(this, i) },
		itemIndex: i,
	});
}

async function ticket(this: IExecuteFunctions, operation: string, i: number): Promise<IDataObject | IDataObject[]> {
	const number = () => encodeURIComponent((this.getNodeParameter('number', i) as string).trim());
	const note = () => this.getNodeParameter('note', i, '') as string;
	const call = (method: 'GET' | 'POST', path: string, body?: IDataObject) =>
		kabarRequest.call(this, method, `/api/v1/tickets${path}`, body, { itemIndex: i });
	switch (operation) {
		case 'create': {
			const extra = this.getNodeParameter('ticketFields', i, {}) as IDataObject;
			const body: IDataObject = { text: this.getNodeParameter('text', i) as string, ...extra };
			const phone = this.getNodeParameter('reporterPhone', i, '') as string;
			if (phone) body.reporter_phone = phone;
			for (const k of Object.keys(body)) if (body[k] === '') delete body[k];
			return call('POST', '', body);
		}
		case 'get':
			return call('GET', `/${number()}`);
		case 'getAll': {
			const filters = this.getNodeParameter('filters', i, {}) as IDataObject;
			return kabarList.call(this, '/api/v1/tickets', filters);
		}
		case 'assign':
			return call('POST', `/${number()}/assign`, {
				assignee: this.getNodeParameter('assignee', i) as number,
				note: note(),
			});
		case 'progress':
			return call('POST', `/${number()}/progress`, { note: note() });
		case 'setStatus':
			return call('POST', `/${number()}/status`, {
				status: this.getNodeParameter('status', i) as string,
				note: note(),
			});
		case 'addNote':
			return call('POST', `/${number()}/notes`, { note: note() });
	}
	throw new NodeOperationError(this.getNode(), `Unknown ticket operation ${operation}`, { itemIndex: i });
}
