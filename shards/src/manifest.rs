//! Manifest rows and their Parquet files.
//!
//! Owns the mapping between [`ManifestRow`] (one sample) and Arrow record
//! batches of the schema defined in `chess-schemas`, reading and writing
//! `manifest.parquet` (and subset manifests stored outside their dataset,
//! which carry their dataset root in the Parquet key-value metadata).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array,
    RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::SchemaRef;
use chess_schemas::{col, LabelColumn, LabelType, ManifestColumns, SampleMeta};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Result, ShardError};

/// A label value; the column's type decides how it is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl LabelValue {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            LabelValue::Null => serde_json::Value::Null,
            LabelValue::Bool(b) => (*b).into(),
            LabelValue::Int(i) => (*i).into(),
            LabelValue::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            LabelValue::Str(s) => s.clone().into(),
        }
    }
}

/// One sample of a manifest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestRow {
    pub key: String,
    pub shard: String,
    pub offset: u64,
    pub size: u64,
    pub sample_offset: u64,
    pub sample_size: u64,
    pub height: u32,
    pub width: u32,
    pub dtype: String,
    pub patient_id: Option<String>,
    pub study_id: Option<String>,
    pub series_id: Option<String>,
    pub view_position: Option<String>,
    pub sex: Option<String>,
    pub age_years: Option<f32>,
    pub modality: Option<String>,
    pub transfer_syntax: Option<String>,
    pub clip_value: Option<f64>,
    pub pixel_hash: String,
    pub extra_fields: Option<String>,
    pub split: Option<String>,
    /// Values of the label columns, in the manifest's label order.
    pub labels: Vec<LabelValue>,
}

impl ManifestRow {
    /// The sample's `<key>.json` content: the row's values, labels by name.
    pub fn sample_meta(&self, labels: &[LabelColumn]) -> SampleMeta {
        SampleMeta {
            key: self.key.clone(),
            height: self.height,
            width: self.width,
            dtype: self.dtype.clone(),
            patient_id: self.patient_id.clone(),
            study_id: self.study_id.clone(),
            series_id: self.series_id.clone(),
            view_position: self.view_position.clone(),
            sex: self.sex.clone(),
            age_years: self.age_years,
            modality: self.modality.clone(),
            transfer_syntax: self.transfer_syntax.clone(),
            clip_value: self.clip_value,
            pixel_hash: self.pixel_hash.clone(),
            extra_fields: self.extra_field_names().into_iter().map(str::to_string).collect(),
            split: self.split.clone(),
            labels: labels.iter().zip(&self.labels).map(|(c, v)| (c.name.clone(), v.to_json())).collect(),
        }
    }

    /// Names of the extra arrays of this sample.
    pub fn extra_field_names(&self) -> Vec<&str> {
        self.extra_fields.as_deref().map(|s| s.split(',').filter(|f| !f.is_empty()).collect()).unwrap_or_default()
    }
}

fn label_column(label: &LabelColumn, rows: &[ManifestRow], index: usize) -> Result<ArrayRef> {
    let bad =
        |v: &LabelValue| ShardError::Sample(format!("label `{}` is {:?}, which does not fit its type", label.name, v));
    macro_rules! ints {
        ($builder:ty, $t:ty) => {{
            let mut b = <$builder>::with_capacity(rows.len());
            for r in rows {
                match &r.labels[index] {
                    LabelValue::Null => b.append_null(),
                    LabelValue::Int(i) => b.append_value(<$t>::try_from(*i).map_err(|_| bad(&r.labels[index]))?),
                    LabelValue::Bool(v) => b.append_value(*v as $t),
                    LabelValue::Float(f) if f.fract() == 0.0 && *f >= <$t>::MIN as f64 && *f <= <$t>::MAX as f64 => {
                        b.append_value(*f as $t)
                    }
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    macro_rules! floats {
        ($builder:ty, $t:ty) => {{
            let mut b = <$builder>::with_capacity(rows.len());
            for r in rows {
                match &r.labels[index] {
                    LabelValue::Null => b.append_null(),
                    LabelValue::Int(i) => b.append_value(*i as $t),
                    LabelValue::Float(f) => b.append_value(*f as $t),
                    LabelValue::Bool(v) => b.append_value(*v as u8 as $t),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match label.label_type {
        LabelType::Bool => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for r in rows {
                match &r.labels[index] {
                    LabelValue::Null => b.append_null(),
                    LabelValue::Bool(v) => b.append_value(*v),
                    LabelValue::Int(i @ (0 | 1)) => b.append_value(*i == 1),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        LabelType::Int8 => ints!(Int8Builder, i8),
        LabelType::Int16 => ints!(Int16Builder, i16),
        LabelType::Int32 => ints!(Int32Builder, i32),
        LabelType::Int64 => ints!(Int64Builder, i64),
        LabelType::Float32 => floats!(Float32Builder, f32),
        LabelType::Float64 => floats!(Float64Builder, f64),
        LabelType::Utf8 => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
            for r in rows {
                match &r.labels[index] {
                    LabelValue::Null => b.append_null(),
                    LabelValue::Str(s) => b.append_value(s),
                    LabelValue::Int(i) => b.append_value(i.to_string()),
                    LabelValue::Float(f) => b.append_value(f.to_string()),
                    LabelValue::Bool(v) => b.append_value(v.to_string()),
                }
            }
            Arc::new(b.finish())
        }
    })
}

/// Builds a record batch of the manifest schema from rows.
pub fn rows_to_batch(schema: &SchemaRef, columns: &ManifestColumns, rows: &[ManifestRow]) -> Result<RecordBatch> {
    fn strings<'a>(rows: &'a [ManifestRow], f: impl Fn(&'a ManifestRow) -> Option<&'a str>) -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    }
    fn u64s(rows: &[ManifestRow], f: impl Fn(&ManifestRow) -> u64) -> ArrayRef {
        let mut b = UInt64Builder::with_capacity(rows.len());
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish())
    }
    fn u32s(rows: &[ManifestRow], f: impl Fn(&ManifestRow) -> u32) -> ArrayRef {
        let mut b = UInt32Builder::with_capacity(rows.len());
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish())
    }
    for r in rows {
        if r.labels.len() != columns.labels.len() {
            return Err(ShardError::Sample(format!(
                "sample {} has {} label values, the manifest has {} label columns",
                r.key,
                r.labels.len(),
                columns.labels.len()
            )));
        }
    }
    let mut arrays: Vec<ArrayRef> = vec![
        strings(rows, |r| Some(&r.key)),
        strings(rows, |r| Some(&r.shard)),
        u64s(rows, |r| r.offset),
        u64s(rows, |r| r.size),
        u64s(rows, |r| r.sample_offset),
        u64s(rows, |r| r.sample_size),
        u32s(rows, |r| r.height),
        u32s(rows, |r| r.width),
        strings(rows, |r| Some(&r.dtype)),
        strings(rows, |r| r.patient_id.as_deref()),
        strings(rows, |r| r.study_id.as_deref()),
        strings(rows, |r| r.series_id.as_deref()),
        strings(rows, |r| r.view_position.as_deref()),
        strings(rows, |r| r.sex.as_deref()),
        Arc::new(rows.iter().map(|r| r.age_years).collect::<Float32Array>()),
        strings(rows, |r| r.modality.as_deref()),
        strings(rows, |r| r.transfer_syntax.as_deref()),
        Arc::new(rows.iter().map(|r| r.clip_value).collect::<Float64Array>()),
        strings(rows, |r| Some(&r.pixel_hash)),
        strings(rows, |r| r.extra_fields.as_deref()),
    ];
    if columns.has_split {
        arrays.push(strings(rows, |r| r.split.as_deref()));
    }
    for (i, label) in columns.labels.iter().enumerate() {
        arrays.push(label_column(label, rows, i)?);
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(ShardError::internal)
}

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_max_row_group_row_count(Some(64 * 1024))
        .build()
}

/// Writes record batches to a Parquet file (via a temporary name, renamed
/// when complete), recording the dataset root when given.
pub fn write_parquet(
    path: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    dataset_root: Option<&str>,
) -> Result<()> {
    let metadata: Vec<(&str, String)> =
        dataset_root.map(|root| (chess_schemas::META_DATASET_ROOT, root.to_string())).into_iter().collect();
    let mut sink = ParquetSink::create(path, schema, &metadata)?;
    for batch in batches {
        sink.write(batch)?;
    }
    sink.finish()
}

/// A Parquet file written batch by batch (row groups flushed as they fill,
/// so memory stays bounded), under a temporary name renamed by [`finish`].
///
/// [`finish`]: ParquetSink::finish
pub struct ParquetSink {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<File>,
}

impl ParquetSink {
    /// Starts `path` (as `path.tmp`) with these key-value metadata entries.
    pub fn create(path: &Path, schema: &SchemaRef, metadata: &[(&str, String)]) -> Result<ParquetSink> {
        let tmp = tmp_path(path);
        let file = File::create(&tmp).map_err(ShardError::write(&tmp))?;
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))
            .map_err(ShardError::parquet_write(&tmp))?;
        for (key, value) in metadata {
            writer.append_key_value_metadata(parquet::file::metadata::KeyValue::new(key.to_string(), value.clone()));
        }
        Ok(ParquetSink { path: path.to_path_buf(), tmp, writer })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(ShardError::parquet_write(&self.tmp))
    }

    /// Completes the file durably and gives it its final name.
    pub fn finish(self) -> Result<()> {
        let file = self.writer.into_inner().map_err(ShardError::parquet_write(&self.tmp))?;
        file.sync_all().map_err(ShardError::write(&self.tmp))?;
        std::fs::rename(&self.tmp, &self.path).map_err(ShardError::write(&self.path))?;
        Ok(())
    }
}

/// A manifest file opened for reading parts of it: schema, row count and
/// metadata come from the Parquet footer; rows are read only as asked, and
/// only the columns asked for (projection).
#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub path: PathBuf,
    pub schema: SchemaRef,
    pub columns: ManifestColumns,
    /// The dataset root recorded in the file, if any.
    pub dataset_root: Option<String>,
    metadata: Arc<parquet::file::metadata::ParquetMetaData>,
}

impl ManifestFile {
    /// Reads and validates the footer of a manifest file.
    pub fn open(path: &Path) -> Result<ManifestFile> {
        let file = File::open(path).map_err(ShardError::read(path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(ShardError::parquet(path))?;
        let schema = builder.schema().clone();
        let columns = chess_schemas::validate_manifest_schema(&schema)
            .map_err(|cause| ShardError::Schema { path: path.to_path_buf(), cause })?;
        let metadata = builder.metadata().clone();
        let mut m = ManifestFile { path: path.to_path_buf(), schema, columns, dataset_root: None, metadata };
        m.dataset_root = m.key_value(chess_schemas::META_DATASET_ROOT);
        Ok(m)
    }

    /// Rows in the file (from its footer).
    pub fn num_rows(&self) -> usize {
        self.metadata.file_metadata().num_rows().max(0) as usize
    }

    pub fn num_row_groups(&self) -> usize {
        self.metadata.num_row_groups()
    }

    /// A key-value metadata entry of the file.
    pub fn key_value(&self, key: &str) -> Option<String> {
        self.metadata
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == key))
            .and_then(|k| k.value.clone())
    }

    fn builder(&self, names: Option<&[&str]>) -> Result<(ParquetRecordBatchReaderBuilder<File>, SchemaRef)> {
        let file = File::open(&self.path).map_err(ShardError::read(&self.path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(ShardError::parquet(&self.path))?;
        let Some(names) = names else {
            return Ok((builder, self.schema.clone()));
        };
        let mut indices = Vec::with_capacity(names.len());
        for name in names {
            let i = self.schema.index_of(name).map_err(|_| ShardError::Manifest {
                path: self.path.clone(),
                reason: format!("has no column `{name}`"),
            })?;
            indices.push(i);
        }
        let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), indices);
        let builder = builder.with_projection(mask);
        let schema = builder.schema().clone();
        Ok((builder, schema))
    }

    /// The named columns of every row, as one batch in file order (all
    /// columns with `None`). Memory: those columns only.
    pub fn read_columns(&self, names: Option<&[&str]>) -> Result<RecordBatch> {
        let (builder, schema) = self.builder(names)?;
        let reader = builder
            .with_batch_size(self.num_rows().clamp(1, 1 << 30))
            .build()
            .map_err(ShardError::parquet(&self.path))?;
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(ShardError::arrow(&self.path))?;
        match batches.len() {
            0 => Ok(RecordBatch::new_empty(schema)),
            1 => Ok(batches.into_iter().next().expect("one batch")),
            _ => arrow_select::concat::concat_batches(&schema, &batches).map_err(ShardError::arrow(&self.path)),
        }
    }

    /// The rows in batches of at most `batch_rows`, streamed (memory: one
    /// batch and one row group at a time).
    pub fn batches(
        &self,
        names: Option<&[&str]>,
        batch_rows: usize,
    ) -> Result<impl Iterator<Item = Result<RecordBatch>> + use<'_>> {
        let (builder, _) = self.builder(names)?;
        let reader = builder.with_batch_size(batch_rows.max(1)).build().map_err(ShardError::parquet(&self.path))?;
        Ok(reader.map(|b| b.map_err(ShardError::arrow(&self.path))))
    }

    /// The first `limit` rows (all columns), read from the first row groups only.
    pub fn head(&self, limit: usize) -> Result<Manifest> {
        let mut rows = 0;
        let mut groups = Vec::new();
        for g in 0..self.num_row_groups() {
            if rows >= limit {
                break;
            }
            groups.push(g);
            rows += self.metadata.row_group(g).num_rows().max(0) as usize;
        }
        let (builder, schema) = self.builder(None)?;
        let reader = builder
            .with_row_groups(groups)
            .with_limit(limit)
            .with_batch_size(limit.max(1))
            .build()
            .map_err(ShardError::parquet(&self.path))?;
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(ShardError::arrow(&self.path))?;
        let batch = arrow_select::concat::concat_batches(&schema, &batches).map_err(ShardError::arrow(&self.path))?;
        let manifest = Manifest {
            path: self.path.clone(),
            schema,
            columns: self.columns.clone(),
            batch,
            dataset_root: self.dataset_root.clone(),
        };
        manifest.check_required_non_null()?;
        Ok(manifest)
    }

    /// The whole manifest in memory.
    pub fn read(&self) -> Result<Manifest> {
        let batch = self.read_columns(None)?;
        let manifest = Manifest {
            path: self.path.clone(),
            schema: self.schema.clone(),
            columns: self.columns.clone(),
            batch,
            dataset_root: self.dataset_root.clone(),
        };
        manifest.check_required_non_null()?;
        Ok(manifest)
    }
}

/// `path` with `.tmp` appended, in the same directory (so rename is atomic).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A manifest read into memory.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub schema: SchemaRef,
    pub columns: ManifestColumns,
    pub batch: RecordBatch,
    /// The dataset root recorded in the file, if any.
    pub dataset_root: Option<String>,
}

impl Manifest {
    /// Reads and validates a manifest file (every column; see
    /// [`ManifestFile`] to read only some).
    pub fn open(path: &Path) -> Result<Manifest> {
        ManifestFile::open(path)?.read()
    }

    /// Builds an in-memory manifest from rows.
    pub fn from_rows(path: PathBuf, columns: ManifestColumns, rows: &[ManifestRow]) -> Result<Manifest> {
        let schema = chess_schemas::manifest_schema(columns.has_split, &columns.labels);
        let batch = rows_to_batch(&schema, &columns, rows)?;
        Ok(Manifest { path, schema, columns, batch, dataset_root: None })
    }

    fn check_required_non_null(&self) -> Result<()> {
        for spec in chess_schemas::required_columns() {
            if spec.nullable {
                continue;
            }
            let array = self.batch.column_by_name(spec.name).expect("validated schema");
            if array.null_count() > 0 {
                return Err(ShardError::Manifest {
                    path: self.path.clone(),
                    reason: format!("column `{}` has {} null values; it must have none", spec.name, array.null_count()),
                });
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Typed access to the columns.
    pub fn view(&self) -> ManifestView<'_> {
        ManifestView::new(self)
    }

    /// All rows, materialised.
    pub fn rows(&self) -> Vec<ManifestRow> {
        let view = self.view();
        (0..self.len()).map(|i| view.row(i)).collect()
    }

    /// Writes this manifest to `path`.
    pub fn write(&self, path: &Path, dataset_root: Option<&str>) -> Result<()> {
        write_parquet(path, &self.schema, std::slice::from_ref(&self.batch), dataset_root)
    }

    /// Same columns, other rows.
    pub fn with_batch(&self, batch: RecordBatch) -> Manifest {
        Manifest { batch, ..self.clone() }
    }
}

/// The rows of `batch` at `indices`, in that order (repeats allowed).
pub fn take_rows(batch: &RecordBatch, indices: &[usize]) -> Result<Vec<ArrayRef>> {
    let indices = UInt32Array::from(indices.iter().map(|&i| i as u32).collect::<Vec<_>>());
    batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &indices, None))
        .collect::<std::result::Result<_, _>>()
        .map_err(ShardError::internal)
}

/// Downcast columns of a manifest batch, for fast row access.
pub struct ManifestView<'a> {
    key: &'a StringArray,
    shard: &'a StringArray,
    offset: &'a UInt64Array,
    size: &'a UInt64Array,
    sample_offset: &'a UInt64Array,
    sample_size: &'a UInt64Array,
    height: &'a UInt32Array,
    width: &'a UInt32Array,
    dtype: &'a StringArray,
    patient_id: &'a StringArray,
    study_id: &'a StringArray,
    series_id: &'a StringArray,
    view_position: &'a StringArray,
    sex: &'a StringArray,
    age_years: &'a Float32Array,
    modality: &'a StringArray,
    transfer_syntax: &'a StringArray,
    clip_value: &'a Float64Array,
    pixel_hash: &'a StringArray,
    extra_fields: &'a StringArray,
    split: Option<&'a StringArray>,
    labels: Vec<&'a ArrayRef>,
}

fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_string())
}

/// Reads a label cell as a [`LabelValue`].
pub fn label_value(array: &ArrayRef, i: usize) -> LabelValue {
    if array.is_null(i) {
        return LabelValue::Null;
    }
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<BooleanArray>() {
        LabelValue::Bool(a.value(i))
    } else if let Some(a) = any.downcast_ref::<Int8Array>() {
        LabelValue::Int(a.value(i) as i64)
    } else if let Some(a) = any.downcast_ref::<Int16Array>() {
        LabelValue::Int(a.value(i) as i64)
    } else if let Some(a) = any.downcast_ref::<Int32Array>() {
        LabelValue::Int(a.value(i) as i64)
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        LabelValue::Int(a.value(i))
    } else if let Some(a) = any.downcast_ref::<Float32Array>() {
        LabelValue::Float(a.value(i) as f64)
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        LabelValue::Float(a.value(i))
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        LabelValue::Str(a.value(i).to_string())
    } else {
        LabelValue::Null
    }
}

impl<'a> ManifestView<'a> {
    fn new(m: &'a Manifest) -> Self {
        let b = &m.batch;
        fn get<'b, T: 'static>(b: &'b RecordBatch, name: &str) -> &'b T {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<T>())
                .expect("manifest schema was validated when read")
        }
        ManifestView {
            key: get(b, col::KEY),
            shard: get(b, col::SHARD),
            offset: get(b, col::OFFSET),
            size: get(b, col::SIZE),
            sample_offset: get(b, col::SAMPLE_OFFSET),
            sample_size: get(b, col::SAMPLE_SIZE),
            height: get(b, col::HEIGHT),
            width: get(b, col::WIDTH),
            dtype: get(b, col::DTYPE),
            patient_id: get(b, col::PATIENT_ID),
            study_id: get(b, col::STUDY_ID),
            series_id: get(b, col::SERIES_ID),
            view_position: get(b, col::VIEW_POSITION),
            sex: get(b, col::SEX),
            age_years: get(b, col::AGE_YEARS),
            modality: get(b, col::MODALITY),
            transfer_syntax: get(b, col::TRANSFER_SYNTAX),
            clip_value: get(b, col::CLIP_VALUE),
            pixel_hash: get(b, col::PIXEL_HASH),
            extra_fields: get(b, col::EXTRA_FIELDS),
            split: m.columns.has_split.then(|| get(b, col::SPLIT)),
            labels: m.columns.labels.iter().map(|l| b.column_by_name(&l.name).expect("validated")).collect(),
        }
    }

    pub fn key(&self, i: usize) -> &'a str {
        self.key.value(i)
    }

    pub fn shard(&self, i: usize) -> &'a str {
        self.shard.value(i)
    }

    pub fn row(&self, i: usize) -> ManifestRow {
        ManifestRow {
            key: self.key.value(i).to_string(),
            shard: self.shard.value(i).to_string(),
            offset: self.offset.value(i),
            size: self.size.value(i),
            sample_offset: self.sample_offset.value(i),
            sample_size: self.sample_size.value(i),
            height: self.height.value(i),
            width: self.width.value(i),
            dtype: self.dtype.value(i).to_string(),
            patient_id: opt_str(self.patient_id, i),
            study_id: opt_str(self.study_id, i),
            series_id: opt_str(self.series_id, i),
            view_position: opt_str(self.view_position, i),
            sex: opt_str(self.sex, i),
            age_years: self.age_years.is_valid(i).then(|| self.age_years.value(i)),
            modality: opt_str(self.modality, i),
            transfer_syntax: opt_str(self.transfer_syntax, i),
            clip_value: self.clip_value.is_valid(i).then(|| self.clip_value.value(i)),
            pixel_hash: self.pixel_hash.value(i).to_string(),
            extra_fields: opt_str(self.extra_fields, i),
            split: self.split.and_then(|s| opt_str(s, i)),
            labels: self.labels.iter().map(|a| label_value(a, i)).collect(),
        }
    }
}
