#!/usr/bin/env node
// Draws the app icon (a Weberei hexagon with threads to a knot) as SVG and as PNGs (192, 512,
// maskable 512) into static/icons/. Pure Node (zlib for PNG): run `node scripts/make-icons.mjs`
// after changing the drawing; the results are committed.
import { deflateSync } from 'node:zlib';
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'static', 'icons');
mkdirSync(out, { recursive: true });

const BG = [0x2f, 0x5d, 0x50];
const LINE = [0xf6, 0xf7, 0xf4];
const KNOT = [0xe8, 0xa3, 0x3d];
const HEX = [0xb8, 0xd4, 0xc8];

// Geometry in a 0..1 square; `pad` shrinks it into the maskable safe zone.
function scene(pad) {
  const s = (v) => pad + v * (1 - 2 * pad);
  const hex = [];
  for (let i = 0; i < 6; i++) {
    const a = (Math.PI / 3) * i + Math.PI / 6;
    hex.push([s(0.5 + 0.36 * Math.cos(a)), s(0.5 + 0.36 * Math.sin(a))]);
  }
  const knot = [s(0.56), s(0.46)];
  const homes = [
    [s(0.2), s(0.72)],
    [s(0.3), s(0.22)],
    [s(0.82), s(0.74)],
  ];
  return { hex, knot, homes, w: 0.028 * (1 - 2 * pad), r: 0.1 * (1 - 2 * pad), hr: 0.045 * (1 - 2 * pad) };
}

function distSeg(px, py, [ax, ay], [bx, by]) {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - ax - t * dx, py - ay - t * dy);
}

function colourAt(x, y, sc, rounded) {
  if (rounded) {
    const r = 0.18;
    const cx = Math.min(Math.max(x, r), 1 - r);
    const cy = Math.min(Math.max(y, r), 1 - r);
    if (Math.hypot(x - cx, y - cy) > r) return null;
  }
  let c = BG;
  for (let i = 0; i < 6; i++) {
    if (distSeg(x, y, sc.hex[i], sc.hex[(i + 1) % 6]) < sc.w * 0.6) c = HEX;
  }
  for (const h of sc.homes) {
    if (distSeg(x, y, h, sc.knot) < sc.w * 0.5) c = LINE;
    if (Math.hypot(x - h[0], y - h[1]) < sc.hr) c = LINE;
  }
  if (Math.hypot(x - sc.knot[0], y - sc.knot[1]) < sc.r) c = KNOT;
  return c;
}

function png(size, pad, rounded) {
  const sc = scene(pad);
  const N = 4;
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (let sy = 0; sy < N; sy++) {
        for (let sx = 0; sx < N; sx++) {
          const c = colourAt((x + (sx + 0.5) / N) / size, (y + (sy + 0.5) / N) / size, sc, rounded);
          if (c) {
            r += c[0];
            g += c[1];
            b += c[2];
            a += 255;
          }
        }
      }
      const n = N * N;
      const o = y * (size * 4 + 1) + 1 + x * 4;
      const cov = a / 255;
      raw[o] = cov ? Math.round(r / cov) : 0;
      raw[o + 1] = cov ? Math.round(g / cov) : 0;
      raw[o + 2] = cov ? Math.round(b / cov) : 0;
      raw[o + 3] = Math.round(a / n);
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const CRC = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(buf) {
  let c = -1;
  for (const byte of buf) c = CRC[(c ^ byte) & 0xff] ^ (c >>> 8);
  return c ^ -1;
}

function svg() {
  const sc = scene(0);
  const p = (v) => (v * 512).toFixed(1);
  const hex = sc.hex.map(([x, y]) => `${p(x)},${p(y)}`).join(' ');
  const lines = sc.homes
    .map(([x, y]) => `<line x1="${p(x)}" y1="${p(y)}" x2="${p(sc.knot[0])}" y2="${p(sc.knot[1])}"/>`)
    .join('');
  const homes = sc.homes.map(([x, y]) => `<circle cx="${p(x)}" cy="${p(y)}" r="${p(sc.hr)}"/>`).join('');
  const hexC = `#${HEX.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512" role="img" aria-label="Weberei">
<rect width="512" height="512" rx="92" fill="#2f5d50"/>
<polygon points="${hex}" fill="none" stroke="${hexC}" stroke-width="${p(sc.w * 1.2)}" stroke-linejoin="round"/>
<g stroke="#f6f7f4" stroke-width="${p(sc.w)}" stroke-linecap="round">${lines}</g>
<g fill="#f6f7f4">${homes}</g>
<circle cx="${p(sc.knot[0])}" cy="${p(sc.knot[1])}" r="${p(sc.r)}" fill="#e8a33d"/>
</svg>
`;
}

writeFileSync(join(out, 'icon.svg'), svg());
writeFileSync(join(out, 'icon-192.png'), png(192, 0, true));
writeFileSync(join(out, 'icon-512.png'), png(512, 0, true));
writeFileSync(join(out, 'maskable-512.png'), png(512, 0.1, false));
console.log('icons written to', out);
