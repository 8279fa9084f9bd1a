/** Parameters several nodes share: the session, the recipient. */
import type { IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { groupJidByName, type TargetKind } from './requests';
import { kabarRequest } from './transport';

export const sessionField = (show?: Record<string, string[]>): INodeProperties => ({
	displayName: 'Session Name or ID',
	name: 'session',
	type: 'options',
	typeOptions: { loadOptionsMethod: 'getSessions' },
	default: '',
	required: true,
	description:
		'The WhatsApp session to use. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
	...(show ? { displayOptions: { show } } : {}),
});

export const targetFields = (show?: Record<string, string[]>): INodeProperties[] => [
	{
		displayName: 'Recipient Type',
		name: 'targetKind',
		type: 'options',
		options: [
			{ name: 'Phone Number', value: 'phone', description: 'As people type it: 0812…, +62 812…' },
			{ name: 'JID', value: 'jid', description: '628…@s.whatsapp.net, a group’s …@g.us, an @lid' },
			{ name: 'Group Name', value: 'groupName', description: 'A group the session is in, by its name' },
		],
		default: 'phone',
		...(show ? { displayOptions: { show } } : {}),
	},
	{
		displayName: 'To',
		name: 'to',
		type: 'string',
		default: '',
		required: true,
		placeholder: '0812 3456 7890',
		...(show ? { displayOptions: { show } } : {}),
	},
];

/** The recipient as Kabar takes it (`to`): a group name is looked up among the session's
 * groups. */
export async function resolveTarget(
	this: IExecuteFunctions,
	sessionId: string,
	itemIndex: number,
): Promise<string> {
	const kind = this.getNodeParameter('targetKind', itemIndex, 'phone') as TargetKind;
	const to = (this.getNodeParameter('to', itemIndex) as string).trim();
	if (kind !== 'groupName') return to;
	const groups = await kabarRequest.call(
		this,
		'GET',
		`/api/v1/sessions/${encodeURIComponent(sessionId)}/groups`,
		undefined,
		{ itemIndex },
	);
	return groupJidByName(groups, to);
}
