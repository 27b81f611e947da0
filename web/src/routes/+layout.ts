// A client-only single-page app: the API serves the static build, GraphQL does the rest.
export const ssr = false;
export const prerender = false;
export const trailingSlash = 'ignore';
