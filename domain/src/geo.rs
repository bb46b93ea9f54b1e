//! Geography: `CountryCode` (ISO 3166-1 alpha-2), `Coordinates` (WGS 84
//! degrees, range-checked) and the great-circle distance between two points.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An ISO 3166-1 alpha-2 country code, stored upper case (`"GB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

/// The text is not an assigned ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not an ISO 3166-1 alpha-2 country code")]
pub struct InvalidCountryCode;

impl CountryCode {
    /// Accepts an assigned alpha-2 code in any letter case.
    pub fn parse(text: &str) -> Result<CountryCode, InvalidCountryCode> {
        let bytes = text.as_bytes();
        // Checked here, not left to the table: it also maps "" to a country.
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(InvalidCountryCode);
        }
        let code = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()];
        let upper = std::str::from_utf8(&code).map_err(|_| InvalidCountryCode)?;
        iso_country::Country::from_str(upper).map_err(|_| InvalidCountryCode)?;
        Ok(CountryCode(code))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CountryCode, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        CountryCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A point on Earth in degrees: latitude in [-90, 90], longitude in [-180, 180].
/// Serialised as `[lat, lon]`, the shape clients send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    lat: f64,
    lon: f64,
}

/// Which half of a coordinate pair is out of range (both can be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatesError {
    #[error("latitude must be a finite number in [-90, 90]")]
    Latitude,
    #[error("longitude must be a finite number in [-180, 180]")]
    Longitude,
    #[error("latitude and longitude are both out of range")]
    Both,
}

impl Coordinates {
    pub fn new(lat: f64, lon: f64) -> Result<Coordinates, CoordinatesError> {
        // NaN fails both range checks, so it is refused too.
        let lat_ok = (-90.0..=90.0).contains(&lat);
        let lon_ok = (-180.0..=180.0).contains(&lon);
        match (lat_ok, lon_ok) {
            (true, true) => Ok(Coordinates { lat, lon }),
            (false, true) => Err(CoordinatesError::Latitude),
            (true, false) => Err(CoordinatesError::Longitude),
            (false, false) => Err(CoordinatesError::Both),
        }
    }

    pub fn lat(&self) -> f64 {
        self.lat
    }

    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance in kilometres (haversine on a sphere of the
    /// Earth's mean radius). The error against the ellipsoid is below 0.5 %,
    /// far inside what a 900 km/h speed threshold can notice, and it needs
    /// no iteration, so it stays cheap on the decision path.
    pub fn distance_km(&self, other: &Coordinates) -> f64 {
        const EARTH_MEAN_RADIUS_KM: f64 = 6_371.008_8;
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let d_lat = lat2 - lat1;
        let d_lon = (other.lon - self.lon).to_radians();
        let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
        // Clamped: rounding can push h a hair above 1 for antipodal points.
        2.0 * EARTH_MEAN_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
    }
}

impl Serialize for Coordinates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        [self.lat, self.lon].serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Coordinates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Coordinates, D::Error> {
        let [lat, lon] = <[f64; 2]>::deserialize(deserializer)?;
        Coordinates::new(lat, lon).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes() {
        assert_eq!(CountryCode::parse("gb").unwrap().as_str(), "GB");
        assert!(CountryCode::parse("").is_err());
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("GBR").is_err());
        assert!(CountryCode::parse("G1").is_err());
    }

    #[test]
    fn coordinates_ranges() {
        assert!(Coordinates::new(90.0, -180.0).is_ok());
        assert_eq!(Coordinates::new(90.1, 0.0), Err(CoordinatesError::Latitude));
        assert_eq!(
            Coordinates::new(0.0, 180.5),
            Err(CoordinatesError::Longitude)
        );
        assert_eq!(
            Coordinates::new(f64::NAN, 500.0),
            Err(CoordinatesError::Both)
        );
    }

    #[test]
    fn london_to_new_york_is_about_5570_km() {
        let london = Coordinates::new(51.5074, -0.1278).unwrap();
        let new_york = Coordinates::new(40.7128, -74.0060).unwrap();
        let d = london.distance_km(&new_york);
        assert!((d - 5_570.0).abs() < 10.0, "{d}");
        assert_eq!(london.distance_km(&london), 0.0);
    }
}
