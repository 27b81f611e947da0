//! Which tiles cover a box: the tile resolution for a map zoom (or for a box without one) and
//! the H3 cells at that resolution that intersect the box. Pure geometry, no I/O.
//!
//! Invariant: the cover of a box contains every cell that intersects it (a point inside the
//! box always lies in a covered tile), at any resolution.

use std::collections::{HashSet, VecDeque};

use domain::geo::Bbox;
use h3o::{CellIndex, LatLng, Resolution};

/// Zoom levels a viewport may ask for (web map zoom, 256-px tiles).
pub const ZOOM_RANGE: std::ops::RangeInclusive<f64> = 0.0..=22.0;
/// Coarsest tile resolution (~12 400 km² cells): a box of the maximum area stays in a few
/// dozen tiles.
pub const MIN_TILE_RES: u8 = 3;
/// Finest tile resolution (~0.1 km² cells): closer than street level the grouping gains nothing.
pub const MAX_TILE_RES: u8 = 9;
/// When a client sends no zoom, the finest resolution at which the box needs about this many
/// tiles (by area) is used.
const TARGET_TILES: f64 = 24.0;

/// The tile resolution for a web map zoom at latitude `lat`:
/// `clamp(round(0.712 * (zoom - log2(cos lat)) - 3.19), 3, 9)`.
///
/// Why: `zoom - log2(cos lat)` is the "ground zoom" (a Mercator map at latitude `lat` shows
/// `1 / cos lat` times less ground per pixel, so the zoom alone would give 2.5 times as many
/// tiles in Weimar as on the equator). Each zoom step quarters a viewport's area and each H3
/// resolution step divides a cell's area by 7, so one zoom step is log(4)/log(7) ≈ 0.712
/// resolution steps. The offset makes a 1280×800 px viewport about 12 cells in area (zoom 12
/// in Weimar, about 30 × 20 km, gets resolution 6, 36 km² cells); with the cells along the rim
/// and the rounding, a typical viewport needs between about 5 and 60 tiles at every zoom and
/// latitude (see `a_typical_viewport_needs_a_few_to_a_few_dozen_tiles_at_every_zoom`).
pub fn tile_resolution(zoom: f64, lat: f64) -> Resolution {
    let ground_zoom = zoom - lat.to_radians().cos().max(0.01).log2();
    let res = (0.712 * ground_zoom - 3.19).round();
    let res = res.clamp(f64::from(MIN_TILE_RES), f64::from(MAX_TILE_RES)) as u8;
    Resolution::try_from(res).unwrap_or(Resolution::Six)
}

/// The tile resolution for a box when the client sent no zoom: the finest one at which the
/// box's area is about [`TARGET_TILES`] cells.
pub fn resolution_for_box(bbox: &Bbox) -> Resolution {
    let area = bbox_area_km2(bbox);
    (MIN_TILE_RES..=MAX_TILE_RES)
        .rev()
        .filter_map(|r| Resolution::try_from(r).ok())
        .find(|r| area / r.area_km2() <= TARGET_TILES)
        .unwrap_or(Resolution::Three)
}

fn bbox_area_km2(bbox: &Bbox) -> f64 {
    const KM_PER_DEG: f64 = 111.32;
    let mid_lat = ((bbox.south + bbox.north) / 2.0).to_radians();
    (bbox.east - bbox.west) * (bbox.north - bbox.south) * KM_PER_DEG * KM_PER_DEG * mid_lat.cos()
}

/// Every cell at `res` that intersects `bbox`, or `None` when that is more than `max` cells.
///
/// A flood fill from the cell of the box's centre: a neighbour is taken when its lat/lng extent,
/// widened by a tenth on each side, overlaps the box. The widening absorbs the difference
/// between a cell's straight-line vertex polygon and its true (great-circle) edges, so the test
/// is conservative: it may take a sliver cell too many at the rim, never one too few. Cells
/// that intersect the box are connected (they tile a connected region), so the fill reaches
/// them all.
pub fn cover(bbox: &Bbox, res: Resolution, max: usize) -> Option<Vec<CellIndex>> {
    let centre = LatLng::new(
        (bbox.south + bbox.north) / 2.0,
        (bbox.west + bbox.east) / 2.0,
    )
    .ok()?;
    let poles = [
        LatLng::new(90.0, 0.0).ok().map(|p| p.to_cell(res)),
        LatLng::new(-90.0, 0.0).ok().map(|p| p.to_cell(res)),
    ];
    let start = centre.to_cell(res);
    let mut seen = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    let mut covered = Vec::new();
    while let Some(cell) = queue.pop_front() {
        covered.push(cell);
        if covered.len() > max {
            return None;
        }
        for next in cell.grid_disk::<Vec<_>>(1) {
            if seen.insert(next) && may_intersect(next, bbox, &poles) {
                queue.push_back(next);
            }
        }
    }
    covered.sort_unstable();
    Some(covered)
}

/// The cover of `bbox` at the finest resolution not finer than `finest` that needs at most
/// `max` tiles. Never refuses a box: at resolution 0 the whole Earth is 122 cells.
pub fn cover_within(bbox: &Bbox, finest: Resolution, max: usize) -> Vec<CellIndex> {
    (0..=u8::from(finest))
        .rev()
        .filter_map(|r| Resolution::try_from(r).ok())
        .find_map(|r| cover(bbox, r, max))
        .or_else(|| cover(bbox, Resolution::Zero, usize::MAX))
        .unwrap_or_default()
}

fn may_intersect(cell: CellIndex, bbox: &Bbox, poles: &[Option<CellIndex>; 2]) -> bool {
    let boundary = cell.boundary();
    let (mut south, mut north) = (f64::MAX, f64::MIN);
    let (mut west, mut east) = (f64::MAX, f64::MIN);
    for v in boundary.iter() {
        south = south.min(v.lat());
        north = north.max(v.lat());
        west = west.min(v.lng());
        east = east.max(v.lng());
    }
    if east - west > 180.0 {
        // The cell straddles the antimeridian: its extent in longitude is unknown here, so
        // count it as everywhere (conservative).
        (west, east) = (-180.0, 180.0);
    }
    if poles[0] == Some(cell) {
        (north, west, east) = (90.0, -180.0, 180.0);
    }
    if poles[1] == Some(cell) {
        (south, west, east) = (-90.0, -180.0, 180.0);
    }
    let dlat = (north - south) * 0.1;
    let dlng = (east - west) * 0.1;
    south - dlat <= bbox.north
        && north + dlat >= bbox.south
        && west - dlng <= bbox.east
        && east + dlng >= bbox.west
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use domain::geo::Point;
    use rand::Rng;

    use super::*;
    use crate::config::ApiConfig;

    fn bbox(west: f64, south: f64, east: f64, north: f64) -> Bbox {
        Bbox::new(west, south, east, north, 1e9).unwrap()
    }

    /// The box a `width`×`height` px web map shows at `zoom` around (lat, lng).
    fn viewport(lat: f64, lng: f64, zoom: f64, width: f64, height: f64) -> Bbox {
        let deg_per_px = 360.0 / (256.0 * 2f64.powf(zoom));
        let half_w = width / 2.0 * deg_per_px;
        let half_h = height / 2.0 * deg_per_px * lat.to_radians().cos();
        bbox(lng - half_w, lat - half_h, lng + half_w, lat + half_h)
    }

    #[test]
    fn zoom_maps_to_tile_resolutions_from_3_to_9() {
        let weimar = |z| u8::from(tile_resolution(z, 50.98));
        assert_eq!(weimar(0.0), 3);
        assert_eq!(weimar(8.0), 3);
        assert_eq!(weimar(9.0), 4);
        assert_eq!(weimar(10.0), 4);
        assert_eq!(weimar(12.0), 6);
        assert_eq!(weimar(14.0), 7);
        assert_eq!(weimar(15.0), 8);
        assert_eq!(weimar(17.0), 9);
        assert_eq!(weimar(22.0), 9);
        // The same zoom shows more ground on the equator: coarser tiles there.
        assert_eq!(u8::from(tile_resolution(12.0, 0.0)), 5);
        for lat in [-89.9, -45.0, 0.0, 50.98, 89.9, 90.0] {
            let mut last = 0;
            for z in 0..=220 {
                let r = u8::from(tile_resolution(f64::from(z) / 10.0, lat));
                assert!(r >= last, "resolution must not fall as the zoom rises");
                assert!((MIN_TILE_RES..=MAX_TILE_RES).contains(&r));
                last = r;
            }
        }
    }

    #[test]
    fn a_typical_viewport_needs_a_few_to_a_few_dozen_tiles_at_every_zoom() {
        for (lat, lng) in [(50.9795, 11.3235), (0.0, 30.0), (64.1, -21.9)] {
            for z in 8..=22 {
                let zoom = f64::from(z);
                let b = viewport(lat, lng, zoom, 1280.0, 800.0);
                let tiles = cover(&b, tile_resolution(zoom, lat), 10_000).unwrap();
                println!(
                    "lat {lat} zoom {z}: res {} -> {} tiles",
                    u8::from(tile_resolution(zoom, lat)),
                    tiles.len()
                );
                assert!(
                    (1..=60).contains(&tiles.len()),
                    "zoom {z} at lat {lat}: {} tiles",
                    tiles.len()
                );
            }
        }
        // The default tile cap (ApiConfig::max_viewport_tiles) leaves room for a big screen.
        let b = viewport(50.9795, 11.3235, 10.0, 2560.0, 1440.0);
        let n = cover(&b, tile_resolution(10.0, 50.98), 10_000)
            .unwrap()
            .len();
        assert!(n <= ApiConfig::default().max_viewport_tiles, "{n}");
    }

    #[test]
    fn a_point_inside_the_box_always_falls_in_a_covered_tile() {
        let mut rng = rand::rng();
        for round in 0..300 {
            let res = Resolution::try_from(rng.random_range(MIN_TILE_RES..=MAX_TILE_RES)).unwrap();
            // A box of a few cells at that resolution, anywhere (also near the poles and the
            // antimeridian).
            let size = res.edge_length_km() / 111.0 * rng.random_range(0.05..8.0);
            let lat = rng.random_range(-89.0..(89.0 - size));
            let lng = rng.random_range(-180.0..(180.0 - size));
            let h = size * rng.random_range(0.2..1.0);
            let b = bbox(lng, lat, (lng + size).min(180.0), (lat + h).min(90.0));
            let Some(tiles) = cover(&b, res, 5_000) else {
                continue;
            };
            let tiles: HashSet<_> = tiles.into_iter().collect();
            for _ in 0..200 {
                // Corners and edges too: that is where a cell barely touching the box sits.
                let p_lat = match rng.random_range(0..4) {
                    0 => b.south,
                    1 => b.north,
                    _ => rng.random_range(b.south..=b.north),
                };
                let p_lng = match rng.random_range(0..4) {
                    0 => b.west,
                    1 => b.east,
                    _ => rng.random_range(b.west..=b.east),
                };
                let cell = Point::new(p_lat, p_lng).unwrap().cell(res);
                assert!(
                    tiles.contains(&cell),
                    "round {round}: ({p_lat}, {p_lng}) in {b:?} lies in {cell} (res {res}), not covered"
                );
            }
        }
    }

    #[test]
    fn the_cover_is_refused_above_the_tile_cap() {
        let b = bbox(10.0, 50.0, 12.0, 52.0);
        assert!(cover(&b, Resolution::Nine, 300).is_none());
        assert!(cover(&b, Resolution::Three, 300).is_some());
    }

    #[test]
    fn without_a_zoom_the_box_picks_a_resolution_with_a_few_dozen_tiles() {
        for b in [
            bbox(11.27, 50.93, 11.37, 51.03),
            bbox(6.0, 47.0, 11.0, 52.0),
            bbox(11.32, 50.97, 11.325, 50.975),
        ] {
            let res = resolution_for_box(&b);
            let n = cover(&b, res, 10_000).unwrap().len();
            assert!((1..=80).contains(&n), "{b:?}: res {res} -> {n} tiles");
        }
    }

    #[test]
    fn a_box_too_long_for_the_tile_cap_gets_coarser_tiles_and_stays_covered() {
        // 8 km tall, 300 degrees wide (within the area limit): too many tiles at resolution 3.
        let b = bbox(-150.0, -0.035, 150.0, 0.035);
        assert!(cover(&b, Resolution::Three, 300).is_none());
        let tiles = cover_within(&b, Resolution::Seven, 300);
        assert!(!tiles.is_empty() && tiles.len() <= 300, "{}", tiles.len());
        let res = tiles[0].resolution();
        assert!(u8::from(res) < 3, "{res}");
        let tiles: HashSet<_> = tiles.into_iter().collect();
        let mut rng = rand::rng();
        for _ in 0..2_000 {
            let p = Point::new(
                rng.random_range(b.south..=b.north),
                rng.random_range(b.west..=b.east),
            )
            .unwrap();
            assert!(tiles.contains(&p.cell(res)), "{p:?}");
        }
        // A box that fits is covered at the finest resolution allowed.
        let small = bbox(11.31, 50.97, 11.33, 50.99);
        let tiles = cover_within(&small, Resolution::Seven, 300);
        assert!(tiles.iter().all(|t| t.resolution() == Resolution::Seven));
    }
}
