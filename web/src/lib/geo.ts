// Bounding boxes as the API takes them (no antimeridian crossing, area limited by the server).

export interface Bbox {
  west: number;
  south: number;
  east: number;
  north: number;
}

export interface ClampedBbox {
  bbox: Bbox;
  /** True when the view was larger than the server allows and only its centre is live. */
  clamped: boolean;
}

const clampNum = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** The view's box made valid for the API: inside the world, west <= east, area <= maxArea. */
export function clampBbox(b: Bbox, maxAreaDeg2: number): ClampedBbox {
  let west = clampNum(b.west, -180, 180);
  let east = clampNum(b.east, -180, 180);
  if (west > east) [west, east] = [-180, 180];
  let south = clampNum(b.south, -85, 85);
  let north = clampNum(b.north, -85, 85);
  if (south > north) [south, north] = [north, south];
  const area = (east - west) * (north - south);
  const limit = maxAreaDeg2 * 0.98;
  if (area <= limit || area === 0) return { bbox: { west, south, east, north }, clamped: false };
  const f = Math.sqrt(limit / area);
  const cx = (west + east) / 2;
  const cy = (south + north) / 2;
  const hw = ((east - west) * f) / 2;
  const hh = ((north - south) * f) / 2;
  return {
    bbox: { west: cx - hw, south: cy - hh, east: cx + hw, north: cy + hh },
    clamped: true,
  };
}

export function inBbox(b: Bbox, lat: number, lng: number): boolean {
  return lat >= b.south && lat <= b.north && lng >= b.west && lng <= b.east;
}

/** Opacity of a thread: 1 when spun, fading linearly to a floor at its expiry; yarn stays 1. */
export function fadenOpacity(
  expiresAt: string,
  isYarn: boolean,
  decaySeconds: number,
  now = Date.now(),
): number {
  if (isYarn) return 1;
  const left = (new Date(expiresAt).getTime() - now) / (decaySeconds * 1000);
  return Math.max(0.12, Math.min(1, left));
}
