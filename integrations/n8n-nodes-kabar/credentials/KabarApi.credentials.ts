import type {
	IAuthenticateGeneric,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/** Kabar's base URL and an API key (kabar_…, made under API keys in Kabar's dashboard or
 * with POST /api/v1/api-keys). Tested by GET /api/v1/auth/me. */
export class KabarApi implements ICredentialType {
	name = 'kabarApi';

	displayName = 'Kabar API';

	icon = 'file:kabar.svg' as const;

	documentationUrl = 'https://github.com/kabar/kabar/blob/main/docs/n8n.md';

	properties: INodeProperties[] = [
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: 'http://127.0.0.1:7308',
			placeholder: 'https://wa.example.com',
			description: 'Where Kabar answers, without /api/v1',
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description:
				'A Kabar API key of a user allowed to send messages (and, for the trigger and send-and-wait, to manage webhooks): an operator',
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: { 'X-API-Key': '={{$credentials.apiKey}}' },
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/api/v1/auth/me',
		},
	};
}
