import got, { type Got } from 'got';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The control plane's Nova-compatible API, as computectl and the demo use it. */
export class ComputeApi {
  private readonly http: Got;

  constructor(baseUrl: string, token: string) {
    this.http = got.extend({
      prefixUrl: baseUrl,
      headers: { 'x-auth-token': token },
      throwHttpErrors: false,
      timeout: { request: 30_000 },
      retry: { limit: 0 },
    });
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies of the documented API
  private async call(method: 'GET' | 'POST', url: string, json?: unknown): Promise<any> {
    const res = await this.http(url, { method, json });
    const body = res.body ? JSON.parse(res.body) : null;
    if (res.statusCode >= 400 && res.statusCode !== 207) {
      const inner = body && typeof body === 'object' ? (Object.values(body)[0] as { message?: string }) : null;
      throw new ApiError(res.statusCode, inner?.message ?? `HTTP ${res.statusCode}`);
    }
    return body;
  }

  register(server: Record<string, unknown>) {
    return this.call('POST', 'servers', { server });
  }
  show(id: string) {
    return this.call('GET', `servers/${id}`);
  }
  start(id: string) {
    return this.call('POST', `servers/${id}/action`, { 'os-start': null });
  }
  actions(id: string) {
    return this.call('GET', `servers/${id}/os-instance-actions`);
  }
  action(id: string, requestId: string) {
    return this.call('GET', `servers/${id}/os-instance-actions/${requestId}`);
  }
  externalEvents(events: unknown[]) {
    return this.call('POST', 'os-server-external-events', { events });
  }
}
