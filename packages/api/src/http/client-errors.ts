import { randomUUID } from 'node:crypto';
import { maxHeaderSize, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ApiProblem, PROBLEM_CONTENT_TYPE, type ProblemField, problemDocument } from './problem';

/** What Node's HTTP parser (llhttp) refused, as a problem: status, code and the part at fault. */
const PARSER_ERRORS: Record<string, { status: number; code: string; field: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'HEADERS_TOO_LARGE', field: 'headers' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, code: 'PAYLOAD_TOO_LARGE', field: 'body' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'REQUEST_TIMEOUT', field: 'request' },
  HPE_INVALID_METHOD: { status: 400, code: 'BAD_REQUEST', field: 'method' },
  HPE_INVALID_URL: { status: 400, code: 'BAD_REQUEST', field: 'url' },
  HPE_INVALID_VERSION: { status: 400, code: 'BAD_REQUEST', field: 'version' },
  HPE_INVALID_CONTENT_LENGTH: { status: 400, code: 'BAD_REQUEST', field: 'headers.content-length' },
  HPE_UNEXPECTED_CONTENT_LENGTH: { status: 400, code: 'BAD_REQUEST', field: 'headers.content-length' },
  HPE_INVALID_TRANSFER_ENCODING: { status: 400, code: 'BAD_REQUEST', field: 'headers.transfer-encoding' },
  HPE_INVALID_CHUNK_SIZE: { status: 400, code: 'BAD_REQUEST', field: 'body' },
};

interface ClientError extends Error {
  code?: string;
  /** llhttp's own words, e.g. "Invalid method encountered". */
  reason?: string;
}

/** The problem a connection-level error is answered with. */
export function clientErrorProblem(err: ClientError): ApiProblem {
  const known = PARSER_ERRORS[err.code ?? ''];
  const reason = typeof err.reason === 'string' ? err.reason : undefined;
  if (known?.status === 431) {
    return new ApiProblem(
      431,
      known.code,
      `the request line and headers are over ${maxHeaderSize} bytes; a long URL or query string counts too`,
      { errors: [{ field: known.field, message: `request line and headers over ${maxHeaderSize} bytes` }] },
    );
  }
  const errors: ProblemField[] = [{ field: known?.field ?? 'request', message: reason ?? err.code ?? 'malformed' }];
  const detail =
    known?.status === 408
      ? 'the request was not received in time'
      : `the request is not valid HTTP/1.1 (${reason ?? err.code ?? 'malformed'})`;
  return new ApiProblem(known?.status ?? 400, known?.code ?? 'BAD_REQUEST', detail, { errors });
}

/**
 * Fastify's `clientErrorHandler`: errors Node's HTTP server raises before there is a request
 * (headers over `maxHeaderSize`, a request that does not parse, a timeout) are answered with
 * a problem written straight to the socket, which is then destroyed, as Fastify's and
 * Node's defaults do. Nothing is written on a socket that is no longer writable, or whose
 * in-flight response has already started (Node's own check: a second status line would
 * corrupt what the client is reading).
 */
export function clientErrorHandler(this: FastifyInstance, err: ClientError, socket: Socket): void {
  // A reset connection is already gone; there is no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const problem = clientErrorProblem(err);
  const requestId = randomUUID();
  this.log.debug({ err, code: problem.code, status: problem.status, requestId }, 'client error');
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify(problemDocument(problem, undefined, requestId));
    socket.write(
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? problem.title}\r\n` +
        `content-type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\n` +
        'connection: close\r\n\r\n' +
        body,
    );
  }
  socket.destroy(err);
}
