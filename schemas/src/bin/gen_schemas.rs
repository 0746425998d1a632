//! Writes `schemas/manifest.schema.json` and `schemas/dataset.schema.json`
//! from the code in `chess-schemas`, so the committed files never drift.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir =
        std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for (file, text) in [
        ("manifest.schema.json", chess_schemas::manifest_schema_json()),
        ("dataset.schema.json", chess_schemas::dataset_json_doc()),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, text)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
