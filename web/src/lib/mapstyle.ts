// The offline default style (no tiles, no glyphs, no internet) and our own layers, which are
// added on top of whatever style is used (the default or the server's `mapStyleUrl`).
import type { Map as MlMap, StyleSpecification } from 'maplibre-gl';

export const TYP_COLORS = {
  IDEEN: '#b85c00',
  EVENT: '#1f5fa8',
  RESSOURCE: '#23734a',
} as const;
export const GOLD = '#c9a227';
export const YARN_A = '#6b3fa0';
export const YARN_B = '#e8d9f5';
export const FADEN = '#5a4a3a';

export function defaultStyle(): StyleSpecification {
  return {
    version: 8,
    name: 'Weberei offline',
    sources: {},
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#eef1ea' } },
    ],
  };
}

const LINE = ['==', ['geometry-type'], 'LineString'] as ['==', ['geometry-type'], string];
const EMPTY = { type: 'FeatureCollection' as const, features: [] };

/** Sources and layers of the Weberei, drawn above the base style. */
export function addOurLayers(map: MlMap) {
  map.addSource('weberei', { type: 'geojson', data: EMPTY });
  map.addSource('faeden', { type: 'geojson', data: EMPTY });
  map.addSource('knoten', {
    type: 'geojson',
    data: EMPTY,
    cluster: true,
    clusterRadius: 40,
    clusterMaxZoom: 14,
  });
  map.addSource('pending', { type: 'geojson', data: EMPTY });

  map.addLayer({
    id: 'weberei-fill',
    type: 'fill',
    source: 'weberei',
    filter: ['get', 'centre'],
    paint: { 'fill-color': '#2f5d50', 'fill-opacity': 0.06 },
  });
  map.addLayer({
    id: 'weberei-line',
    type: 'line',
    source: 'weberei',
    filter: ['get', 'centre'],
    paint: { 'line-color': '#2f5d50', 'line-width': 2.5, 'line-dasharray': [3, 2] },
  });
  map.addLayer({
    id: 'weberei-grid',
    type: 'line',
    source: 'weberei',
    filter: ['!', ['get', 'centre']],
    paint: { 'line-color': '#9fb5ab', 'line-width': 1 },
  });
  // Threads: a plain line whose opacity fades; yarn is two colours dashed into each other (a
  // twisted look) at full opacity; gold is reserved for donations.
  map.addLayer({
    id: 'faeden-line',
    type: 'line',
    source: 'faeden',
    filter: ['all', LINE, ['!', ['get', 'yarn']], ['!', ['get', 'gold']]],
    layout: { 'line-cap': 'round' },
    paint: { 'line-color': FADEN, 'line-width': 2, 'line-opacity': ['get', 'opacity'] },
  });
  map.addLayer({
    id: 'faeden-yarn-base',
    type: 'line',
    source: 'faeden',
    filter: ['all', LINE, ['get', 'yarn']],
    paint: { 'line-color': YARN_B, 'line-width': 4 },
  });
  map.addLayer({
    id: 'faeden-yarn-twist',
    type: 'line',
    source: 'faeden',
    filter: ['all', LINE, ['get', 'yarn']],
    paint: { 'line-color': YARN_A, 'line-width': 4, 'line-dasharray': [1, 1] },
  });
  map.addLayer({
    id: 'faeden-gold',
    type: 'line',
    source: 'faeden',
    filter: ['all', LINE, ['get', 'gold']],
    paint: { 'line-color': GOLD, 'line-width': 3, 'line-blur': 1 },
  });
  // Where threads start: the homes (coarse cells) of the roles that spun them.
  map.addLayer({
    id: 'faeden-home',
    type: 'circle',
    source: 'faeden',
    filter: ['==', ['geometry-type'], 'Point'],
    paint: {
      'circle-color': '#ffffff',
      'circle-radius': 4,
      'circle-stroke-color': ['case', ['get', 'yarn'], YARN_A, FADEN],
      'circle-stroke-width': 2,
    },
  });
  map.addLayer({
    id: 'knoten-cluster',
    type: 'circle',
    source: 'knoten',
    filter: ['has', 'point_count'],
    paint: {
      'circle-color': '#2f5d50',
      'circle-opacity': 0.85,
      'circle-radius': ['step', ['get', 'point_count'], 14, 10, 18, 50, 24],
      'circle-stroke-color': '#ffffff',
      'circle-stroke-width': 3,
    },
  });
  map.addLayer({
    id: 'knoten-point',
    type: 'circle',
    source: 'knoten',
    filter: ['!', ['has', 'point_count']],
    paint: {
      'circle-color': [
        'match',
        ['get', 'typ'],
        'IDEEN',
        TYP_COLORS.IDEEN,
        'EVENT',
        TYP_COLORS.EVENT,
        'RESSOURCE',
        TYP_COLORS.RESSOURCE,
        '#555555',
      ],
      'circle-radius': ['case', ['get', 'yarn'], 10, 8],
      'circle-stroke-color': ['case', ['get', 'yarn'], YARN_A, '#ffffff'],
      'circle-stroke-width': ['case', ['get', 'yarn'], 3, 2],
    },
  });
  map.addLayer({
    id: 'knoten-selected',
    type: 'circle',
    source: 'knoten',
    filter: ['==', ['get', 'id'], ''],
    paint: {
      'circle-color': 'rgba(0,0,0,0)',
      'circle-radius': 14,
      'circle-stroke-color': '#111111',
      'circle-stroke-width': 3,
    },
  });
  map.addLayer({
    id: 'knoten-pending',
    type: 'circle',
    source: 'pending',
    paint: {
      'circle-color': '#8a8a8a',
      'circle-radius': 8,
      'circle-opacity': 0.6,
      'circle-stroke-color': '#ffffff',
      'circle-stroke-width': 2,
    },
  });
}
