/**
 * A tiny client for Fulcrum's admin API in tests: GET and POST JSON with an optional bearer token.
 */
export interface AdminReply {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
}

export async function adminGet(address: string, path: string): Promise<AdminReply> {
  const res = await fetch(`http://${address}${path}`);
  const text = await res.text();
  return { status: res.status, text, body: parse(text) };
}

export async function adminPost(
  address: string,
  path: string,
  body: unknown,
  token?: string,
): Promise<AdminReply> {
  const res = await fetch(`http://${address}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, body: parse(text) };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
