//! Points, bounding boxes and H3 cells. A Knoten's point is the geometric truth; its H3 cell at
//! the fine resolution is the hot-path index (descendants of a coarse cell are one integer range).

use h3o::{CellIndex, LatLng, Resolution};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Default fine resolution of a Knoten's cell (DESIGN.md §4).
pub const FINE_RES: Resolution = Resolution::Twelve;
/// Resolution of a role's home cell: about 0.1 km², coarse on purpose (privacy by design).
pub const HOME_RES: Resolution = Resolution::Nine;
/// Default resolution of a Weberei (neighbourhood).
pub const WEAVERY_RES: Resolution = Resolution::Seven;

/// A WGS84 point, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    ll: LatLng,
}

impl Point {
    /// Refuses NaN, infinities and anything outside lat ∈ [-90, 90], lng ∈ [-180, 180].
    pub fn new(lat: f64, lng: f64) -> Result<Self, DomainError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(DomainError::validation(
                "lat",
                format!("latitude must be between -90 and 90, got {lat}"),
            ));
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(DomainError::validation(
                "lng",
                format!("longitude must be between -180 and 180, got {lng}"),
            ));
        }
        let ll =
            LatLng::new(lat, lng).map_err(|e| DomainError::validation("lat", e.to_string()))?;
        Ok(Self { ll })
    }

    pub fn lat(self) -> f64 {
        self.ll.lat()
    }

    pub fn lng(self) -> f64 {
        self.ll.lng()
    }

    /// The H3 cell containing this point at `res`.
    pub fn cell(self, res: Resolution) -> CellIndex {
        self.ll.to_cell(res)
    }
}

/// H3 cells are stored as PostgreSQL BIGINT: every valid index has bit 63 clear.
pub fn cell_to_i64(cell: CellIndex) -> i64 {
    u64::from(cell) as i64
}

/// The inclusive BIGINT range of `cell`'s descendants at `fine` (empty if `fine` is coarser).
pub fn descendant_range(cell: CellIndex, fine: Resolution) -> Option<(i64, i64)> {
    // Children are ordered by index; the centre child (all digits 0) is the smallest.
    let first = cell.center_child(fine)?;
    let last = cell.child_at(cell.children_count(fine).checked_sub(1)?, fine)?;
    Some((cell_to_i64(first), cell_to_i64(last)))
}

/// A bounding box in degrees. Boxes across the antimeridian are not supported (yet).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bbox {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

impl Bbox {
    /// Validates ranges and orientation; `max_area_deg2` bounds the area a client may ask for.
    pub fn new(
        west: f64,
        south: f64,
        east: f64,
        north: f64,
        max_area_deg2: f64,
    ) -> Result<Self, DomainError> {
        for (field, v, limit) in [
            ("west", west, 180.0),
            ("east", east, 180.0),
            ("south", south, 90.0),
            ("north", north, 90.0),
        ] {
            if !v.is_finite() || v.abs() > limit {
                return Err(DomainError::validation(
                    format!("bbox.{field}"),
                    format!("must be a number between -{limit} and {limit}, got {v}"),
                ));
            }
        }
        if south > north {
            return Err(DomainError::validation(
                "bbox",
                format!("south ({south}) is above north ({north})"),
            ));
        }
        if west > east {
            return Err(DomainError::validation(
                "bbox",
                format!(
                    "west ({west}) is east of east ({east}); boxes across the antimeridian are not supported"
                ),
            ));
        }
        let area = (east - west) * (north - south);
        if area > max_area_deg2 {
            return Err(DomainError::validation(
                "bbox",
                format!(
                    "the box covers {area:.3} square degrees; at most {max_area_deg2} are allowed, zoom in"
                ),
            ));
        }
        Ok(Self {
            west,
            south,
            east,
            north,
        })
    }

    pub fn contains(&self, p: Point) -> bool {
        (self.south..=self.north).contains(&p.lat()) && (self.west..=self.east).contains(&p.lng())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_outside_the_globe_are_refused_with_the_field_named() {
        assert!(Point::new(50.9, 11.3).is_ok());
        let e = Point::new(91.0, 0.0).unwrap_err();
        assert!(matches!(e, DomainError::Validation { ref field, .. } if field == "lat"));
        let e = Point::new(0.0, f64::NAN).unwrap_err();
        assert!(matches!(e, DomainError::Validation { ref field, .. } if field == "lng"));
    }

    #[test]
    fn a_fine_cell_lies_in_its_coarse_parents_range() {
        let p = Point::new(50.9795, 11.3235).unwrap();
        let fine = p.cell(FINE_RES);
        let coarse = p.cell(WEAVERY_RES);
        let (lo, hi) = descendant_range(coarse, FINE_RES).unwrap();
        let v = cell_to_i64(fine);
        assert!(lo <= v && v <= hi);
        let elsewhere = cell_to_i64(Point::new(48.1, 11.5).unwrap().cell(FINE_RES));
        assert!(!(lo <= elsewhere && elsewhere <= hi));
    }

    #[test]
    fn bad_boxes_are_refused() {
        assert!(Bbox::new(11.0, 50.0, 12.0, 51.0, 4.0).is_ok());
        assert!(Bbox::new(12.0, 50.0, 11.0, 51.0, 4.0).is_err());
        assert!(Bbox::new(11.0, 51.0, 12.0, 50.0, 4.0).is_err());
        assert!(Bbox::new(f64::NAN, 50.0, 12.0, 51.0, 4.0).is_err());
        assert!(Bbox::new(-180.0, -90.0, 180.0, 90.0, 4.0).is_err());
    }
}
