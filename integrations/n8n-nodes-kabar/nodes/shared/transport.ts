/** Calls to Kabar's REST API with the node's "Kabar API" credentials, and the session
 * drop-down every node shares. */
import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	INodePropertyOptions,
	IWebhookFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

export type KabarContext = IExecuteFunctions | IHookFunctions | ILoadOptionsFunctions | IWebhookFunctions;

export const CREDENTIALS = 'kabarApi';

export function trimBase(url: string): string {
	return url.trim().replace(/\/+$/, '');
}

export async function kabarRequest(
	this: KabarContext,
	method: IHttpRequestMethods,
	path: string,
	body?: IDataObject,
	options: { qs?: IDataObject; headers?: IDataObject; itemIndex?: number } = {},
): Promise<any> {
	const credentials = await this.getCredentials(CREDENTIALS);
	const request: IHttpRequestOptions = {
		method,
		url: `${trimBase(credentials.baseUrl as string)}${path}`,
		json: true,
		headers: { Accept: 'application/json', ...(options.headers ?? {}) },
	};
	if (body !== undefined) request.body = body;
	if (options.qs) request.qs = options.qs;
	try {
		return await this.helpers.httpRequestWithAuthentication.call(this, CREDENTIALS, request);
	} catch (error) {
		const answer = (error as any)?.response?.data ?? (error as any)?.cause?.response?.data;
		const message = answer?.message ?? (error as Error).message;
		throw new NodeApiError(this.getNode(), error as JsonObject, {
			message: `Kabar: ${message}`,
			description: answer?.code ? `code: ${answer.code}` : undefined,
			itemIndex: options.itemIndex,
		});
	}
}

/** Every page of a cursor-paginated list. */
export async function kabarList(this: KabarContext, path: string, qs: IDataObject = {}): Promise<any[]> {
	const items: any[] = [];
	let cursor: string | undefined;
	do {
		const page = await kabarRequest.call(this, 'GET', path, undefined, {
			qs: { ...qs, limit: 200, ...(cursor ? { cursor } : {}) },
		});
		items.push(...(page.items ?? []));
		cursor = page.next_cursor ?? undefined;
	} while (cursor);
	return items;
}

export async function getSessions(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const sessions = await kabarList.call(this, '/api/v1/sessions');
	return sessions.map((s) => ({
		name: `${s.label} (${s.status})`,
		value: s.id,
		description: s.id,
	}));
}
