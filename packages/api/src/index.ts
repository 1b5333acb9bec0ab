export { type ApiApp, buildApp } from './app';
export type { ApiDeps, ApiRoutePlugin, RateLimitOptions, ReadinessCheck } from './deps';
export { ApiProblem, PROBLEM_CONTENT_TYPE, type ProblemField, problemResponses, problemSchema } from './http/problem';
export type { RouteContext, RouteRateLimit } from './route-context';
