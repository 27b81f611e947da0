import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// `npm run dev` proxies the API (GraphQL over HTTP and WebSocket) so that the app talks to the
// same origin it is served from, as it does behind `weberei up`.
const api = process.env.WEBEREI_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [sveltekit()],
  server: {
    proxy: {
      '/graphql/ws': { target: api, ws: true, changeOrigin: true },
      '/graphql': { target: api, changeOrigin: true },
    },
  },
  build: {
    // MapLibre GL is one large chunk on its own; everything else stays small.
    chunkSizeWarningLimit: 1200,
  },
});
