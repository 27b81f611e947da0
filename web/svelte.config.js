import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  preprocess: vitePreprocess(),
  kit: {
    // A single-page app: every path the server does not know gets index.html.
    adapter: adapter({ pages: 'build', assets: 'build', fallback: 'index.html', strict: true }),
    serviceWorker: { register: true },
    version: { pollInterval: 0 },
    // index.html carries its own CSP: SvelteKit adds the hash of its inline bootstrap script.
    // connect-src and img-src stay open for a configured tile style (Config.mapStyleUrl).
    csp: {
      mode: 'hash',
      directives: {
        'script-src': ['self'],
        'worker-src': ['self'],
        'object-src': ['none'],
        'base-uri': ['self'],
      },
    },
  },
};

export default config;
