//! Reading an enrollment QR code from an image file (a screenshot of the
//! operator's QR, or the PNG that `assent-server enroll ticket --qr` writes).

use assent_shared::protocol::EnrollmentUri;

/// Images larger than this are refused before decoding.
pub const MAX_IMAGE_BYTES: usize = 16 * 1024 * 1024;
/// Decoded images are scaled down to this many pixels on the longer side;
/// QR detection needs far less, and huge photos would take seconds.
const MAX_SIDE: u32 = 2000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    #[error("the image is larger than 16 MiB")]
    TooLarge,
    #[error("this file is not an image the app can read (PNG, JPEG, GIF, BMP, WebP)")]
    NotAnImage,
    #[error("no QR code was found in the image")]
    NoCode,
    #[error("the QR code does not hold an Assent enrollment link")]
    NotEnrollment,
}

/// Finds the first QR code holding an `assent://enroll` link and returns it.
pub fn enrollment_link_from_image(bytes: &[u8]) -> Result<String, QrError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(QrError::TooLarge);
    }
    let image = image::load_from_memory(bytes).map_err(|_| QrError::NotAnImage)?;
    let image = if image.width().max(image.height()) > MAX_SIDE {
        image.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Triangle)
    } else {
        image
    };
    let luma = image.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        luma.width() as usize,
        luma.height() as usize,
        |x, y| luma.get_pixel(x as u32, y as u32).0[0],
    );
    let mut found_any = false;
    for grid in prepared.detect_grids() {
        if let Ok((_, content)) = grid.decode() {
            found_any = true;
            if EnrollmentUri::parse(content.trim()).is_ok() {
                return Ok(content.trim().to_string());
            }
        }
    }
    Err(if found_any {
        QrError::NotEnrollment
    } else {
        QrError::NoCode
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_an_image() {
        assert_eq!(
            enrollment_link_from_image(b"not an image"),
            Err(QrError::NotAnImage)
        );
    }

    #[test]
    fn finds_no_code_in_a_blank_image() {
        let blank = image::RgbImage::from_pixel(200, 200, image::Rgb([255, 255, 255]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(blank)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(enrollment_link_from_image(&png), Err(QrError::NoCode));
    }
}
