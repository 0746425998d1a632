//! The one definition of the CheSS dataset format.
//!
//! This crate owns everything that two tools must agree on to exchange a
//! dataset: the Arrow schema of `manifest.parquet` (required columns, the
//! optional known columns, and which types a label column may take), the
//! contents of `dataset.json`, the per-sample `<key>.json` metadata, and the
//! rules for sample keys. It depends on neither libtorch nor DICOM crates.
//!
//! The schema is versioned ([`MANIFEST_SCHEMA_VERSION`]) and also committed as
//! JSON under `schemas/` by the `chess-gen-schemas` generator; a test fails
//! when the committed file and this code disagree.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

/// Version of the on-disk layout (`dataset.json`, shard naming, members).
pub const FORMAT_VERSION: u32 = 1;
/// Version of the manifest's Arrow schema.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;
/// Parquet key-value metadata: the manifest schema version.
pub const META_SCHEMA_VERSION: &str = "chess.schema_version";
/// Parquet key-value metadata: the dataset root that `shard` paths are
/// relative to, for manifests stored outside their dataset (subsets,
/// per-fraction manifests).
pub const META_DATASET_ROOT: &str = "chess.dataset_root";

/// File names inside a dataset directory.
pub mod layout {
    /// Dataset description.
    pub const DATASET_JSON: &str = "dataset.json";
    /// One row per sample.
    pub const MANIFEST: &str = "manifest.parquet";
    /// Folder of tar shards.
    pub const SHARDS_DIR: &str = "shards";
    /// Never meant for sharing: reject lists, key material.
    pub const PRIVATE_DIR: &str = "private";
    /// Member suffix of the main image.
    pub const IMAGE_SUFFIX: &str = "npy.zst";
    /// Member suffix of the per-sample metadata.
    pub const JSON_SUFFIX: &str = "json";
}

/// Column names of the manifest.
pub mod col {
    pub const KEY: &str = "key";
    pub const SHARD: &str = "shard";
    pub const OFFSET: &str = "offset";
    pub const SIZE: &str = "size";
    pub const SAMPLE_OFFSET: &str = "sample_offset";
    pub const SAMPLE_SIZE: &str = "sample_size";
    pub const HEIGHT: &str = "height";
    pub const WIDTH: &str = "width";
    pub const DTYPE: &str = "dtype";
    pub const PATIENT_ID: &str = "patient_id";
    pub const STUDY_ID: &str = "study_id";
    pub const SERIES_ID: &str = "series_id";
    pub const VIEW_POSITION: &str = "view_position";
    pub const SEX: &str = "sex";
    pub const AGE_YEARS: &str = "age_years";
    pub const MODALITY: &str = "modality";
    pub const TRANSFER_SYNTAX: &str = "transfer_syntax";
    pub const CLIP_VALUE: &str = "clip_value";
    pub const PIXEL_HASH: &str = "pixel_hash";
    pub const EXTRA_FIELDS: &str = "extra_fields";
    pub const SPLIT: &str = "split";
}

/// A column every manifest has, with its type and meaning.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub data_type: DataType,
    pub nullable: bool,
    pub description: &'static str,
}

/// The required columns, in order.
pub fn required_columns() -> Vec<ColumnSpec> {
    use DataType::*;
    let c = |name, data_type, nullable, description| ColumnSpec { name, data_type, nullable, description };
    vec![
        c(
            col::KEY,
            Utf8,
            false,
            "sample key: member names up to their first dot; no dot, no slash; unique in a dataset",
        ),
        c(col::SHARD, Utf8, false, "path of the shard holding the sample, relative to the dataset root"),
        c(col::OFFSET, UInt64, false, "byte offset of the <key>.npy.zst member's data within the shard"),
        c(col::SIZE, UInt64, false, "byte length of the <key>.npy.zst member's data"),
        c(
            col::SAMPLE_OFFSET,
            UInt64,
            false,
            "byte offset of the sample's first tar header (all members are consecutive)",
        ),
        c(
            col::SAMPLE_SIZE,
            UInt64,
            false,
            "byte length of all of the sample's members, tar headers and padding included",
        ),
        c(col::HEIGHT, UInt32, false, "image rows"),
        c(col::WIDTH, UInt32, false, "image columns"),
        c(col::DTYPE, Utf8, false, "pixel type of the decoded array: uint8 or uint16"),
        c(col::PATIENT_ID, Utf8, true, "patient pseudonym (keyed hash; never the source value)"),
        c(col::STUDY_ID, Utf8, true, "study pseudonym"),
        c(col::SERIES_ID, Utf8, true, "series pseudonym"),
        c(col::VIEW_POSITION, Utf8, true, "PA, AP, LL, RL, LATERAL, ... as recorded or inferred"),
        c(col::SEX, Utf8, true, "M, F or O"),
        c(col::AGE_YEARS, Float32, true, "age at acquisition in years"),
        c(col::MODALITY, Utf8, true, "CR, DX, ... (or the source format for non-DICOM input)"),
        c(col::TRANSFER_SYNTAX, Utf8, true, "transfer syntax UID of the source, when DICOM"),
        c(col::CLIP_VALUE, Float64, true, "upper clip applied before normalisation, in source units"),
        c(col::PIXEL_HASH, Utf8, false, "BLAKE3-256 (hex) of the decoded array's bytes: little-endian, C order"),
        c(
            col::EXTRA_FIELDS,
            Utf8,
            true,
            "comma-separated names of extra arrays (<key>.<field>.npy.zst), e.g. target,mask",
        ),
    ]
}

/// Optional columns with a fixed meaning and type.
pub fn known_optional_columns() -> Vec<ColumnSpec> {
    vec![ColumnSpec {
        name: col::SPLIT,
        data_type: DataType::Utf8,
        nullable: true,
        description: "train, valid or test",
    }]
}

/// The type of a label column. Any column that is neither required nor a
/// known optional column is a label column and must have one of these types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Utf8,
}

impl LabelType {
    pub const ALL: [LabelType; 8] = [
        LabelType::Bool,
        LabelType::Int8,
        LabelType::Int16,
        LabelType::Int32,
        LabelType::Int64,
        LabelType::Float32,
        LabelType::Float64,
        LabelType::Utf8,
    ];

    pub fn data_type(self) -> DataType {
        match self {
            LabelType::Bool => DataType::Boolean,
            LabelType::Int8 => DataType::Int8,
            LabelType::Int16 => DataType::Int16,
            LabelType::Int32 => DataType::Int32,
            LabelType::Int64 => DataType::Int64,
            LabelType::Float32 => DataType::Float32,
            LabelType::Float64 => DataType::Float64,
            LabelType::Utf8 => DataType::Utf8,
        }
    }

    pub fn from_data_type(dt: &DataType) -> Option<Self> {
        Self::ALL.into_iter().find(|t| &t.data_type() == dt)
    }
}

/// A label column: name and type. Labels are always nullable (blank).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub label_type: LabelType,
}

/// What is wrong with a manifest's schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("missing required column `{0}`")]
    MissingColumn(String),
    #[error("column `{name}` has type {found}, expected {expected}")]
    WrongType { name: String, found: DataType, expected: DataType },
    #[error("column `{name}` must not be nullable")]
    Nullable { name: String },
    #[error("label column `{name}` has unsupported type {found} (allowed: bool, int8..int64, float32, float64, utf8)")]
    UnsupportedLabelType { name: String, found: DataType },
    #[error("manifest schema version {found} is newer than this tool's ({supported})")]
    TooNew { found: u32, supported: u32 },
    #[error("duplicate column `{0}`")]
    DuplicateColumn(String),
}

fn field_of(spec: &ColumnSpec) -> Field {
    Field::new(spec.name, spec.data_type.clone(), spec.nullable)
}

/// The manifest schema: required columns, then `split` if asked for, then
/// the label columns in the given order.
pub fn manifest_schema(with_split: bool, labels: &[LabelColumn]) -> Arc<Schema> {
    let mut fields: Vec<Field> = required_columns().iter().map(field_of).collect();
    if with_split {
        fields.extend(known_optional_columns().iter().map(field_of));
    }
    fields.extend(labels.iter().map(|l| Field::new(&l.name, l.label_type.data_type(), true)));
    let metadata: std::collections::HashMap<String, String> =
        [(META_SCHEMA_VERSION.to_string(), MANIFEST_SCHEMA_VERSION.to_string())].into();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// What a valid manifest schema holds beyond the required columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestColumns {
    pub has_split: bool,
    pub labels: Vec<LabelColumn>,
}

/// Checks a schema read from a file: required columns with their types,
/// and label columns of allowed types. Extra required-column nullability in
/// the file (writers such as pandas mark every column nullable) is accepted;
/// null values in a non-nullable column are caught when rows are read.
pub fn validate_manifest_schema(schema: &Schema) -> Result<ManifestColumns, SchemaError> {
    if let Some(v) = schema.metadata().get(META_SCHEMA_VERSION) {
        if let Ok(found) = v.parse::<u32>() {
            if found > MANIFEST_SCHEMA_VERSION {
                return Err(SchemaError::TooNew { found, supported: MANIFEST_SCHEMA_VERSION });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().as_str()) {
            return Err(SchemaError::DuplicateColumn(f.name().clone()));
        }
    }
    let required = required_columns();
    for spec in &required {
        let field = schema.field_with_name(spec.name).map_err(|_| SchemaError::MissingColumn(spec.name.to_string()))?;
        if field.data_type() != &spec.data_type {
            return Err(SchemaError::WrongType {
                name: spec.name.to_string(),
                found: field.data_type().clone(),
                expected: spec.data_type.clone(),
            });
        }
    }
    let optional = known_optional_columns();
    let mut out = ManifestColumns::default();
    for field in schema.fields() {
        let name = field.name().as_str();
        if required.iter().any(|s| s.name == name) {
            continue;
        }
        if let Some(spec) = optional.iter().find(|s| s.name == name) {
            if field.data_type() != &spec.data_type {
                return Err(SchemaError::WrongType {
                    name: name.to_string(),
                    found: field.data_type().clone(),
                    expected: spec.data_type.clone(),
                });
            }
            out.has_split = true;
            continue;
        }
        let label_type = LabelType::from_data_type(field.data_type()).ok_or_else(|| {
            SchemaError::UnsupportedLabelType { name: name.to_string(), found: field.data_type().clone() }
        })?;
        out.labels.push(LabelColumn { name: name.to_string(), label_type });
    }
    Ok(out)
}

/// Pixel type of stored arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelDtype {
    Uint8,
    Uint16,
}

impl PixelDtype {
    pub fn name(self) -> &'static str {
        match self {
            PixelDtype::Uint8 => "uint8",
            PixelDtype::Uint16 => "uint16",
        }
    }
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelDtype::Uint8 => 1,
            PixelDtype::Uint16 => 2,
        }
    }
    /// NumPy's dtype descriptor as written in `.npy` headers.
    pub fn npy_descr(self) -> &'static str {
        match self {
            PixelDtype::Uint8 => "|u1",
            PixelDtype::Uint16 => "<u2",
        }
    }
    pub fn max_value(self) -> u32 {
        match self {
            PixelDtype::Uint8 => u8::MAX as u32,
            PixelDtype::Uint16 => u16::MAX as u32,
        }
    }
}

impl fmt::Display for PixelDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PixelDtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uint8" | "u8" | "8" => Ok(PixelDtype::Uint8),
            "uint16" | "u16" | "16" => Ok(PixelDtype::Uint16),
            other => Err(format!("unknown pixel dtype `{other}` (expected uint8 or uint16)")),
        }
    }
}

/// Contents of `<dataset>/dataset.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub format_version: u32,
    pub manifest_schema_version: u32,
    /// Name and version of the tool that wrote the dataset, e.g. `chess-ingest 0.1.0`.
    pub tool_version: String,
    pub pixel_dtype: PixelDtype,
    /// `[height, width]` when every image has that size, otherwise null.
    pub image_size: Option<[u32; 2]>,
    pub sample_count: u64,
    pub shard_count: u64,
    /// Shard file name stem: shards are `shards/<shard_name>-NNNNNN.tar`.
    pub shard_name: String,
    /// How identifying values were removed, e.g. `hmac-sha256 pseudonyms; DICOM tags dropped`.
    pub deid_method: String,
    /// Extra arrays present on samples (`<key>.<field>.npy.zst`).
    #[serde(default)]
    pub extra_fields: Vec<String>,
    /// Label columns of the manifest.
    #[serde(default)]
    pub labels: Vec<LabelColumn>,
    /// Free-form, non-identifying provenance (options used, counts).
    #[serde(default)]
    pub provenance: BTreeMap<String, serde_json::Value>,
}

/// Contents of a sample's `<key>.json` member: the de-identified metadata,
/// the same values as the sample's manifest row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleMeta {
    pub key: String,
    pub height: u32,
    pub width: u32,
    pub dtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_years: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_syntax: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_value: Option<f64>,
    pub pixel_hash: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// Label values by column name (null for blank).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, serde_json::Value>,
}

/// Why a sample key is not acceptable.
#[derive(Debug, thiserror::Error)]
#[error("invalid sample key `{key}`: {reason}")]
pub struct KeyError {
    pub key: String,
    pub reason: &'static str,
}

/// Longest key: keeps `<key>.<field>.npy.zst` within a plain ustar name.
pub const MAX_KEY_LEN: usize = 64;

/// Keys are WebDataset keys: the member name up to its first dot, so no dot;
/// also no path separator, ASCII letters, digits, `_` and `-` only.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    let err = |reason| Err(KeyError { key: key.to_string(), reason });
    if key.is_empty() {
        return err("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return err("longer than 64 bytes");
    }
    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return err("only ASCII letters, digits, '_' and '-' are allowed");
    }
    Ok(())
}

/// Validates an extra-array field name (`target`, `mask`, ...).
pub fn validate_field(field: &str) -> Result<(), KeyError> {
    let err = |reason| Err(KeyError { key: field.to_string(), reason });
    if field.is_empty() || field.len() > 16 {
        return err("field names are 1 to 16 bytes");
    }
    if !field.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return err("field names use lowercase ASCII letters, digits and '_'");
    }
    if matches!(field, "npy" | "json" | "zst") {
        return err("reserved field name");
    }
    Ok(())
}

fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 => "utf8".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        other => other.to_string().to_lowercase(),
    }
}

fn columns_json(specs: &[ColumnSpec]) -> serde_json::Value {
    specs
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "type": type_name(&s.data_type),
                "nullable": s.nullable,
                "description": s.description,
            })
        })
        .collect()
}

/// The committed `schemas/manifest.schema.json`, as generated from this code.
pub fn manifest_schema_json() -> String {
    let doc = serde_json::json!({
        "title": "CheSS dataset manifest (manifest.parquet)",
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "format_version": FORMAT_VERSION,
        "parquet_metadata": {
            META_SCHEMA_VERSION: "manifest schema version of the writer",
            META_DATASET_ROOT: "dataset root that `shard` paths are relative to (manifests stored outside their dataset)",
        },
        "required_columns": columns_json(&required_columns()),
        "optional_columns": columns_json(&known_optional_columns()),
        "label_columns": {
            "description": "any other column is a label column; always nullable (null = blank)",
            "allowed_types": LabelType::ALL.iter().map(|t| type_name(&t.data_type())).collect::<Vec<_>>(),
        },
        "key_rule": "ASCII letters, digits, '_' and '-', 1 to 64 bytes, no dot",
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("static JSON serialises");
    text.push('\n');
    text
}

/// The committed `schemas/dataset.schema.json`: fields of `dataset.json`.
pub fn dataset_json_doc() -> String {
    let doc = serde_json::json!({
        "title": "CheSS dataset description (dataset.json)",
        "format_version": FORMAT_VERSION,
        "fields": {
            "format_version": "uint: version of the dataset layout",
            "manifest_schema_version": "uint: version of the manifest schema",
            "tool_version": "string: tool name and version that wrote the dataset",
            "pixel_dtype": "\"uint8\" | \"uint16\"",
            "image_size": "[height, width] when all images share it, else null",
            "sample_count": "uint: manifest rows",
            "shard_count": "uint: shard files",
            "shard_name": "string: shards are shards/<shard_name>-NNNNNN.tar",
            "deid_method": "string: how identifying values were removed",
            "extra_fields": "[string]: extra arrays per sample (<key>.<field>.npy.zst)",
            "labels": "[{name, type}]: label columns of the manifest",
            "provenance": "{string: any}: non-identifying provenance",
        },
        "layout": {
            "dataset.json": "this description",
            "manifest.parquet": "one row per sample (see manifest.schema.json)",
            "shards/<name>-NNNNNN.tar": "POSIX tar, WebDataset conventions: <key>.npy.zst, <key>.json, <key>.<field>.npy.zst",
            "private/": "never meant for sharing: reject lists naming source files, key material",
        },
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("static JSON serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_round_trips_validation() {
        let labels = vec![
            LabelColumn { name: "Cardiomegaly".into(), label_type: LabelType::Float32 },
            LabelColumn { name: "class".into(), label_type: LabelType::Utf8 },
        ];
        let schema = manifest_schema(true, &labels);
        let cols = validate_manifest_schema(&schema).unwrap();
        assert!(cols.has_split);
        assert_eq!(cols.labels, labels);
    }

    #[test]
    fn missing_and_mistyped_columns_are_named() {
        let schema = manifest_schema(false, &[]);
        let fields: Vec<Field> =
            schema.fields().iter().filter(|f| f.name() != col::PIXEL_HASH).map(|f| f.as_ref().clone()).collect();
        let err = validate_manifest_schema(&Schema::new(fields)).unwrap_err();
        assert!(err.to_string().contains("pixel_hash"), "{err}");

        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[2] = Field::new(col::OFFSET, DataType::Utf8, false);
        let err = validate_manifest_schema(&Schema::new(fields)).unwrap_err();
        assert!(matches!(err, SchemaError::WrongType { .. }), "{err}");

        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("weird", DataType::Date32, true));
        let err = validate_manifest_schema(&Schema::new(fields)).unwrap_err();
        assert!(matches!(err, SchemaError::UnsupportedLabelType { .. }), "{err}");
    }

    #[test]
    fn keys_follow_webdataset_rules() {
        assert!(validate_key("abc_DEF-123").is_ok());
        for bad in ["", "a.b", "a/b", "é", &"x".repeat(65)] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
        assert!(validate_field("target").is_ok());
        assert!(validate_field("npy").is_err());
        assert!(validate_field("Mask").is_err());
    }

    /// The committed JSON files must be what the generator writes today.
    #[test]
    fn committed_schema_files_match_code() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (file, expected) in
            [("manifest.schema.json", manifest_schema_json()), ("dataset.schema.json", dataset_json_doc())]
        {
            let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            assert!(
                committed == expected,
                "schemas/{file} is out of date: run `cargo run -p chess-schemas --bin chess-gen-schemas`"
            );
        }
    }
}
