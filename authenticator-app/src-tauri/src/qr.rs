//! Reading a QR code from an image file: an enrollment link (a screenshot of
//! the operator's QR, or the PNG that `assent-server enroll ticket --qr`
//! writes), or a website's sign-in code link (`otpauth://`, the QR code a
//! service shows when two-step verification is turned on). Which of the two
//! it is, [`crate::authenticator::Authenticator::preview_link`] tells.

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
    #[error(
        "the QR code holds neither an Assent enrollment link nor a sign-in code link (otpauth://)"
    )]
    NotEnrollment,
}

/// Finds the first QR code holding an `assent://enroll` link or an
/// `otpauth://` link and returns the link (which may hold a secret: never
/// log it).
pub fn link_from_image(bytes: &[u8]) -> Result<String, QrError> {
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
            let link = content.trim();
            if EnrollmentUri::parse(link).is_ok() || is_otpauth(link) {
                return Ok(link.to_string());
            }
        }
    }
    Err(if found_any {
        QrError::NotEnrollment
    } else {
        QrError::NoCode
    })
}

/// An `otpauth://` link (of any kind: the preview says what the app takes).
pub fn is_otpauth(link: &str) -> bool {
    link.get(..10)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("otpauth://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(text: &str) -> Vec<u8> {
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let image = code.render::<image::Luma<u8>>().build();
        let mut png = Vec::new();
        image::DynamicImage::ImageLuma8(image)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    }

    #[test]
    fn finds_a_sign_in_code_link_and_refuses_other_content() {
        let link = "otpauth://totp/ACME:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME";
        assert_eq!(link_from_image(&png_of(link)).as_deref(), Ok(link));
        assert_eq!(
            link_from_image(&png_of("https://example.com")),
            Err(QrError::NotEnrollment)
        );
        assert!(is_otpauth("OTPAUTH://totp/x"));
        assert!(!is_otpauth("otpauth:/"));
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        assert_eq!(link_from_image(b"not an image"), Err(QrError::NotAnImage));
    }

    #[test]
    fn finds_no_code_in_a_blank_image() {
        let blank = image::RgbImage::from_pixel(200, 200, image::Rgb([255, 255, 255]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(blank)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(link_from_image(&png), Err(QrError::NoCode));
    }
}
