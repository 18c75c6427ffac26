/**
 * A raw `graphql-transport-ws` client for tests that look at the protocol itself: frames,
 * close codes, many subscriptions on one socket. It records every message it receives.
 */
import WebSocket from 'ws';

export interface WsMessage {
  readonly id?: string;
  readonly type: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- checked by shape in each test
  readonly payload?: any;
}

export interface WsTestClient {
  readonly socket: WebSocket;
  /** Every message received, in order. */
  readonly messages: WsMessage[];
  /** Resolves with the close code and reason once the socket has closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The close code once the socket has closed, else null. */
  readonly closeCode: number | null;
  /** Sends `connection_init` with `payload` and resolves once the server acknowledged it. */
  init(payload?: Record<string, unknown>): Promise<void>;
  /** Sends a `subscribe` message. */
  subscribe(id: string, query: string, variables?: Record<string, unknown>): void;
  /** The messages received for one operation id. */
  messagesOf(id: string): WsMessage[];
  /** Closes the socket and waits until it has closed. */
  close(): Promise<void>;
}

/** Opens a WebSocket to `url` with the `graphql-transport-ws` subprotocol. */
export async function openWsClient(url: string): Promise<WsTestClient> {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const messages: WsMessage[] = [];
  let closeCode: number | null = null;
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => {
      closeCode = code;
      resolve({ code, reason: reason.toString() });
    }),
  );
  socket.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString()) as WsMessage));
  // A refused or oversized frame can surface as a client-side error before the close.
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    messages,
    closed,
    get closeCode() {
      return closeCode;
    },
    async init(payload = {}) {
      socket.send(JSON.stringify({ type: 'connection_init', payload }));
      await new Promise<void>((resolve, reject) => {
        const onMessage = (data: Buffer) => {
          if ((JSON.parse(data.toString()) as WsMessage).type !== 'connection_ack') return;
          socket.off('close', onClose);
          socket.off('message', onMessage);
          resolve();
        };
        const onClose = (code: number) => {
          socket.off('message', onMessage);
          reject(new Error(`socket closed (${code}) before connection_ack`));
        };
        socket.on('message', onMessage);
        socket.once('close', onClose);
      });
    },
    subscribe(id, query, variables = {}) {
      socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    },
    messagesOf(id) {
      return messages.filter((m) => m.id === id);
    },
    async close() {
      if (socket.readyState === WebSocket.CLOSED) return;
      socket.close(1000);
      await closed;
    },
  };
}
