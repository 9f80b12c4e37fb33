//! Enrollment links as QR codes: PNG and SVG files, and Unicode for terminals.

use std::path::Path;

use anyhow::{bail, Context};
use qrcode::{render::svg, render::unicode, Color, EcLevel, QrCode};

fn code(data: &str) -> anyhow::Result<QrCode> {
    // Level M survives a scratched screen or a glare spot and still fits the
    // ~200-character enrollment link in a phone-scannable symbol.
    QrCode::with_error_correction_level(data, EcLevel::M)
        .context("the link is too long for a QR code")
}

/// Half-block characters: two modules per character row, readable by phone
/// cameras from a terminal with a dark-on-light or light-on-dark theme.
pub fn unicode(data: &str) -> anyhow::Result<String> {
    Ok(code(data)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

pub fn svg(data: &str) -> anyhow::Result<String> {
    Ok(code(data)?
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// A black-on-white PNG, 8 pixels per module, with the standard 4-module quiet zone.
pub fn png(data: &str) -> anyhow::Result<Vec<u8>> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = code(data)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
    }
    Ok(out)
}

/// Writes a PNG or SVG file, chosen by the extension.
pub fn write_file(data: &str, path: &Path) -> anyhow::Result<()> {
    let bytes = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => png(data)?,
        Some("svg") => svg(data)?.into_bytes(),
        _ => bail!("--qr needs a .png or .svg file name"),
    };
    // The QR code is the ticket: whoever reads the file can enroll as the user.
    write_owner_only(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

/// Creates (or truncates) `path` with mode 0600 before writing a byte.
fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing file keeps its mode on open: narrow it.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn qr_files_hold_a_ticket_and_are_owner_only_even_over_an_open_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for name in ["ticket.png", "ticket.svg"] {
            let path = dir.path().join(name);
            std::fs::write(&path, b"old").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            write_file("assent://enroll?v=1", &path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
            assert_ne!(std::fs::read(&path).unwrap(), b"old");
        }
    }
}
