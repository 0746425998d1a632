//! Fixture generators for the public chest X-ray importers: each writes a
//! release's exact layout (CSV headers as released, file naming, folder
//! depth) with a few small synthetic images, including the quirks the
//! importers must handle: RGBA and RGB PNGs in NIH, 16-bit PNGs in
//! PadChest, MONOCHROME1 DICOM in VinDr-CXR, JPEGs in MIMIC-CXR-JPG; and a
//! few broken rows, each with the reason the import must give. Every
//! generator returns what the import must produce, so the tests compare
//! exactly.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Image width and height of every fixture image.
pub const W: u32 = 24;
pub const H: u32 = 20;

/// A synthetic radiograph: a ramp with a seed-dependent texture, `0..=max`.
pub fn pattern(seed: u32, max: u32) -> Vec<u16> {
    (0..W * H)
        .map(|i| {
            let (x, y) = (i % W, i / W);
            let v = (x * 37 + y * 23 + (x * y * (seed + 3)) % 41 * 11 + seed * 5) % (max + 1);
            v as u16
        })
        .collect()
}

fn parent(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
}

/// A PNG of `color` and `depth` with raw sample bytes `data`.
pub fn png(path: &Path, color: png::ColorType, depth: png::BitDepth, data: &[u8]) {
    parent(path);
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), W, H);
    enc.set_color(color);
    enc.set_depth(depth);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

pub fn png_gray8(path: &Path, v: &[u16]) {
    png(path, png::ColorType::Grayscale, png::BitDepth::Eight, &v.iter().map(|&x| x as u8).collect::<Vec<_>>());
}

/// RGBA with R = G = B = the grey value and an opaque alpha (NIH's colour files).
pub fn png_rgba(path: &Path, v: &[u16]) {
    let data: Vec<u8> = v.iter().flat_map(|&x| [x as u8, x as u8, x as u8, 255]).collect();
    png(path, png::ColorType::Rgba, png::BitDepth::Eight, &data);
}

pub fn png_rgb(path: &Path, v: &[u16]) {
    let data: Vec<u8> = v.iter().flat_map(|&x| [x as u8, x as u8, x as u8]).collect();
    png(path, png::ColorType::Rgb, png::BitDepth::Eight, &data);
}

/// 16-bit grey, big-endian samples (PadChest's files).
pub fn png_gray16(path: &Path, v: &[u16]) {
    png(
        path,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<_>>(),
    );
}

pub fn jpeg_gray(path: &Path, v: &[u16]) {
    parent(path);
    let data: Vec<u8> = v.iter().map(|&x| x as u8).collect();
    jpeg_encoder::Encoder::new_file(path, 95)
        .unwrap()
        .encode(&data, W as u16, H as u16, jpeg_encoder::ColorType::Luma)
        .unwrap();
}

/// A 16-bit (12 stored) DX chest radiograph of `photometric` with `values`.
pub fn dicom(path: &Path, sop: &str, photometric: &str, patient_id: &str, sex: &str, values: &[u16]) {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    parent(path);
    const DX: &str = "1.2.840.10008.5.1.4.1.1.1.1";
    let mut o = InMemDicomObject::new_empty();
    let mut s = |tag, vr, v: &str| {
        o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    };
    s(tags::SOP_CLASS_UID, VR::UI, DX);
    s(tags::SOP_INSTANCE_UID, VR::UI, sop);
    s(tags::STUDY_INSTANCE_UID, VR::UI, &format!("{sop}.1"));
    s(tags::SERIES_INSTANCE_UID, VR::UI, &format!("{sop}.2"));
    s(tags::PATIENT_ID, VR::LO, patient_id);
    s(tags::PATIENT_SEX, VR::CS, sex);
    s(tags::PATIENT_AGE, VR::AS, "045Y");
    s(tags::MODALITY, VR::CS, "DX");
    s(tags::BODY_PART_EXAMINED, VR::CS, "CHEST");
    s(tags::VIEW_POSITION, VR::CS, "PA");
    s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, photometric);
    for (tag, v) in [
        (tags::ROWS, H as u16),
        (tags::COLUMNS, W as u16),
        (tags::SAMPLES_PER_PIXEL, 1),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 12),
        (tags::HIGH_BIT, 11),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
    }
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    o.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(bytes)));
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax("1.2.840.10008.1.2.1")
        .media_storage_sop_class_uid(DX)
        .media_storage_sop_instance_uid(sop);
    o.with_meta(meta).unwrap().write_to_file(path).unwrap();
}

fn write(path: &Path, text: &str) {
    parent(path);
    std::fs::write(path, text).unwrap();
}

/// What one imported sample must be.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub key: String,
    pub patient_id: Option<String>,
    pub study_id: Option<String>,
    pub split: Option<String>,
    pub view_position: Option<String>,
    pub sex: Option<String>,
    pub age_years: Option<f32>,
    /// (label column, value) pairs that must hold; a `None` value is null.
    pub labels: Vec<(String, Option<f64>)>,
    /// The `boxes` column, parsed, when the release has one.
    pub boxes: Option<serde_json::Value>,
    /// (Utf8 label column, value) pairs that must hold.
    pub text: Vec<(String, Option<String>)>,
    /// Grey values fed to the pipeline, and whether as MONOCHROME1.
    pub pixels: Option<(Vec<u16>, bool)>,
}

impl Expect {
    fn new(key: &str) -> Expect {
        Expect {
            key: key.into(),
            patient_id: None,
            study_id: None,
            split: None,
            view_position: None,
            sex: None,
            age_years: None,
            labels: Vec::new(),
            boxes: None,
            text: Vec::new(),
            pixels: None,
        }
    }
}

/// A generated release: its root, the samples it must give, and the
/// rejected inputs as (source contains, reason code, message contains).
pub struct Fixture {
    pub root: PathBuf,
    pub samples: Vec<Expect>,
    pub rejected: Vec<(String, &'static str, String)>,
}

fn l(name: &str, v: f64) -> (String, Option<f64>) {
    (name.to_string(), Some(v))
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

/// NIH ChestX-ray14: Data_Entry_2017.csv (with the release's trailing
/// empty column), BBox_List_2017.csv, the split lists, images in
/// `images_001/images/` and `images_002/images/`; one RGBA and one RGB file.
pub fn nih(dir: &Path) -> Fixture {
    let root = dir.join("ChestX-ray14");
    let grey = pattern(1, 255);
    let rgba = pattern(2, 255);
    let rgb = pattern(3, 255);
    png_gray8(&root.join("images_001/images/00000001_000.png"), &grey);
    png_rgba(&root.join("images_001/images/00000001_001.png"), &rgba);
    png_rgb(&root.join("images_002/images/00000002_000.png"), &rgb);
    png_gray8(&root.join("images_002/images/00000003_000.png"), &grey);
    png_gray8(&root.join("images_002/images/00000004_000.png"), &grey);
    write(
        &root.join("Data_Entry_2017.csv"),
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n\
00000001_000.png,Cardiomegaly,0,1,58,M,PA,24,20,0.143,0.143,\n\
00000001_001.png,Cardiomegaly|Effusion,1,1,058Y,M,AP,24,20,0.143,0.143,\n\
00000002_000.png,No Finding,0,2,412,F,PA,24,20,0.168,0.168\n\
00000003_000.png,Pneumonitis,0,3,40,F,PA,24,20,0.143,0.143,\n\
00000004_000.png,Mass,0,4,30,X,PA,24,20,0.143,0.143,\n\
00000005_000.png,Nodule|Mass,0,5,30,M,PA,24,20,0.143,0.143,\n",
    );
    write(
        &root.join("BBox_List_2017.csv"),
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n\
00000001_001.png,Cardiomegaly,2.5,3,10,8.25,,,\n\
00000001_001.png,Effusion,1,12,6,4,,,\n",
    );
    write(
        &root.join("train_val_list.txt"),
        "00000001_000.png\n00000002_000.png\n00000003_000.png\n00000004_000.png\n00000005_000.png\n",
    );
    write(&root.join("test_list.txt"), "00000001_001.png\n");
    let nih_labels = |pos: &[&str]| {
        ["Atelectasis", "Cardiomegaly", "Effusion", "Mass", "Nodule", "No Finding", "Hernia"]
            .iter()
            .map(|n| l(n, if pos.contains(n) { 1.0 } else { 0.0 }))
            .collect::<Vec<_>>()
    };
    let mut a = Expect::new("nih_00000001_000");
    a.patient_id = s("1");
    a.study_id = s("00000001_000");
    a.split = s("train");
    a.view_position = s("PA");
    a.sex = s("M");
    a.age_years = Some(58.0);
    a.labels = nih_labels(&["Cardiomegaly"]);
    a.boxes = Some(serde_json::Value::Null);
    a.pixels = Some((grey, false));
    let mut b = Expect::new("nih_00000001_001");
    b.patient_id = s("1");
    b.study_id = s("00000001_001");
    b.split = s("test");
    b.view_position = s("AP");
    b.sex = s("M");
    b.age_years = Some(58.0);
    b.labels = nih_labels(&["Cardiomegaly", "Effusion"]);
    b.boxes = Some(serde_json::json!([
        {"label": "Cardiomegaly", "x": 2.5, "y": 3.0, "w": 10.0, "h": 8.25},
        {"label": "Effusion", "x": 1.0, "y": 12.0, "w": 6.0, "h": 4.0}
    ]));
    b.pixels = Some((rgba, false));
    let mut c = Expect::new("nih_00000002_000");
    c.patient_id = s("2");
    c.study_id = s("00000002_000");
    c.split = s("train");
    c.view_position = s("PA");
    c.sex = s("F");
    c.age_years = None; // 412: one of NIH's impossible ages
    c.labels = nih_labels(&["No Finding"]);
    c.boxes = Some(serde_json::Value::Null);
    c.pixels = Some((rgb, false));
    Fixture {
        root,
        samples: vec![a, b, c],
        rejected: vec![
            (
                "00000003_000.png".into(),
                "bad_csv_row",
                "Data_Entry_2017.csv line 5: Finding Labels: `Pneumonitis`".into(),
            ),
            ("00000004_000.png".into(), "bad_csv_row", "Data_Entry_2017.csv line 6: Patient Gender `X`".into()),
            ("00000005_000.png".into(), "missing_image", "does not exist".into()),
        ],
    }
}

/// MIMIC-CXR-JPG: the four CSVs (the label file gzipped, as released) and
/// `files/p10/p10000032/s50414267/<dicom_id>.jpg`.
pub fn mimic(dir: &Path) -> Fixture {
    let root = dir.join("mimic-cxr-jpg/2.0.0");
    let label_header = "subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,Fracture,Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,Pneumothorax,Support Devices";
    let chexpert = format!(
        "{label_header}\n\
10000032,50414267,,,,,,,,,1.0,,,,,\n\
10000032,53189527,1.0,-1.0,,0.0,,,,,,1.0,,,,\n\
10000764,57375967,,,2.0,,,,,,,,,,,\n"
    );
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(chexpert.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    parent(&root.join("x"));
    std::fs::write(root.join("mimic-cxr-2.0.0-chexpert.csv.gz"), gz).unwrap();
    write(&root.join("mimic-cxr-2.0.0-negbio.csv"), &format!("{label_header}\n10000032,50414267,,,,,,,,,1.0,,,,,\n"));
    let ids = [
        "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014",
        "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962",
        "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab",
        "68b5c4b1-227d0485-9cc38c3f-7b84ab51-4b472714",
        "fffabebf-74fd3a1f-673b6b41-96ec0ac9-2ab69818",
    ];
    write(
        &root.join("mimic-cxr-2.0.0-metadata.csv"),
        &format!(
            "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning\n\
{},10000032,50414267,CHEST (PA AND LAT),PA,20,24,21800506,213014.531,CHEST (PA AND LAT),postero-anterior,Erect\n\
{},10000032,50414267,CHEST (PA AND LAT),LATERAL,20,24,21800506,213014.531,CHEST (PA AND LAT),lateral,Erect\n\
{},10000032,53189527,CHEST (PORTABLE AP),AP,20,24,21800626,165500.312,CHEST (PORTABLE AP),antero-posterior,\n\
{},10000764,57375967,CHEST (PA AND LAT),PA,20,24,21321127,101210.0,CHEST (PA AND LAT),postero-anterior,Erect\n\
{},10000898,50771383,CHEST (PA AND LAT),,20,24,21321127,101210.0,CHEST (PA AND LAT),,\n",
            ids[0], ids[1], ids[2], ids[3], ids[4]
        ),
    );
    write(
        &root.join("mimic-cxr-2.0.0-split.csv"),
        &format!(
            "dicom_id,study_id,subject_id,split\n{},50414267,10000032,train\n{},50414267,10000032,train\n{},53189527,10000032,validate\n{},57375967,10000764,test\n",
            ids[0], ids[1], ids[2], ids[3]
        ),
    );
    let file = |subject: &str, study: &str, id: &str| {
        root.join(format!("files/p{}/p{subject}/s{study}/{id}.jpg", &subject[..2]))
    };
    for (k, (subject, study)) in [
        ("10000032", "50414267"),
        ("10000032", "50414267"),
        ("10000032", "53189527"),
        ("10000764", "57375967"),
        ("10000898", "50771383"),
    ]
    .iter()
    .enumerate()
    {
        jpeg_gray(&file(subject, study, ids[k]), &pattern(k as u32, 255));
    }
    let cols = ["Atelectasis", "Cardiomegaly", "Edema", "No Finding", "Pleural Effusion", "Pneumonia"];
    let labels = |vals: [Option<f64>; 6]| cols.iter().zip(vals).map(|(c, v)| (c.to_string(), v)).collect::<Vec<_>>();
    let mut out = Vec::new();
    for (k, study, split, view, lab) in [
        (0, "50414267", "train", "PA", labels([None, None, None, Some(1.0), None, None])),
        (1, "50414267", "train", "LATERAL", labels([None, None, None, Some(1.0), None, None])),
        (2, "53189527", "valid", "AP", labels([Some(1.0), Some(-1.0), Some(0.0), None, Some(1.0), None])),
    ] {
        let mut e = Expect::new(&format!("mimic_{}", ids[k]));
        e.patient_id = s("10000032");
        e.study_id = s(study);
        e.split = s(split);
        e.view_position = s(view);
        e.labels = lab;
        out.push(e);
    }
    Fixture {
        root,
        samples: out,
        rejected: vec![
            (ids[3].into(), "bad_csv_row", "mimic-cxr-2.0.0-chexpert.csv.gz line 4: Consolidation: `2.0`".into()),
            (ids[4].into(), "bad_csv_row", "has no row in mimic-cxr-2.0.0-split.csv".into()),
        ],
    }
}

const PADCHEST_HEADER: &str = ",ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,ViewPosition_DICOM,Projection,MethodProjection,Pediatric,Modality_DICOM,Manufacturer_DICOM,PhotometricInterpretation_DICOM,PixelRepresentation_DICOM,PixelAspectRatio_DICOM,SpatialResolution_DICOM,BitsStored_DICOM,WindowCenter_DICOM,WindowWidth_DICOM,Rows_DICOM,Columns_DICOM,XRayTubeCurrent_DICOM,Exposure_DICOM,ExposureInuAs_DICOM,ExposureTime,RelativeXRayExposure_DICOM,ReportID,Report,MethodLabel,Labels,Localizations,LabelsLocalizationsBySentence,labelCUIS,LocalizationsCUIS";

/// Row `i`: `[ImageID, ImageDir, StudyID, PatientID, PatientBirth, PatientSex_DICOM, Projection, Labels]`.
fn padchest_row(i: u32, cells: [&str; 8]) -> String {
    let [image, dir, study, patient, birth, sex, proj, labels] = cells;
    format!(
        "{i},{image},{dir},20140915,{study},{patient},{birth},{sex},POSTEROANTERIOR,{proj},Manual review of DICOM fields,No,CR,PhilipsMedicalSystems,MONOCHROME2,0,1\\1,0.139,12,2048,4096,20,24,250,2,2000,8,,4{i},\"texto\",Physician,\"{labels}\",\"[]\",\"[]\",\"[]\",\"[]\""
    )
}

/// PadChest: the label CSV (index column, quoted Python lists) and 16-bit
/// PNGs in the numbered folders `0/` and `1/`.
pub fn padchest(dir: &Path) -> Fixture {
    let root = dir.join("PadChest");
    let ims = [
        "216840111366964012283393834152009033102258826_00-051-028.png",
        "216840111366964012373310883942009170084120009_00-097-074.png",
        "216840111366964013076187734852011291090445391_00-196-188.png",
        "216840111366964013076187734852011291090445391_00-196-189.png",
    ];
    let a = pattern(4, 4095);
    let b = pattern(5, 65535);
    png_gray16(&root.join("0").join(ims[0]), &a);
    png_gray16(&root.join("1").join(ims[1]), &b);
    png_gray16(&root.join("1").join(ims[2]), &a);
    let rows = [
        padchest_row(
            0,
            [
                ims[0],
                "0",
                "20536686640136348236148679891455886468",
                "839860488694292331637988235681460987",
                "1939.0",
                "F",
                "PA",
                "['pleural effusion', 'cardiomegaly']",
            ],
        ),
        padchest_row(
            1,
            [
                ims[1],
                "1",
                "122914301521617826330398495066022099806",
                "313572750430997347502932654319389875966",
                "1928",
                "M",
                "AP_horizontal",
                "['normal']",
            ],
        ),
        padchest_row(
            2,
            [
                ims[2],
                "1",
                "260303713296937106935436418981512624985",
                "78282302416127543838706806693744545098",
                "None",
                "",
                "L",
                "['pleural effusion', 'laminar atelectasis' 'x']",
            ],
        ),
        padchest_row(
            3,
            [
                ims[3],
                "1",
                "260303713296937106935436418981512624985",
                "78282302416127543838706806693744545098",
                "None",
                "",
                "SIDEWAYS",
                "['normal']",
            ],
        ),
    ];
    write(
        &root.join("PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"),
        &format!("{PADCHEST_HEADER}\n{}\n", rows.join("\n")),
    );
    let cols = |pos: &[&str]| {
        ["cardiomegaly", "normal", "pleural effusion"]
            .iter()
            .map(|n| l(n, if pos.contains(n) { 1.0 } else { 0.0 }))
            .collect::<Vec<_>>()
    };
    let mut e0 = Expect::new(&format!("pc_{}", ims[0].trim_end_matches(".png")));
    e0.patient_id = s("839860488694292331637988235681460987");
    e0.study_id = s("20536686640136348236148679891455886468");
    e0.view_position = s("PA");
    e0.sex = s("F");
    e0.age_years = Some(75.0);
    e0.labels = cols(&["pleural effusion", "cardiomegaly"]);
    e0.text = vec![("projection".into(), s("PA"))];
    e0.pixels = Some((a.clone(), false));
    let mut e1 = Expect::new(&format!("pc_{}", ims[1].trim_end_matches(".png")));
    e1.patient_id = s("313572750430997347502932654319389875966");
    e1.study_id = s("122914301521617826330398495066022099806");
    e1.view_position = s("AP");
    e1.sex = s("M");
    e1.age_years = Some(86.0);
    e1.labels = cols(&["normal"]);
    e1.text = vec![("projection".into(), s("AP_horizontal"))];
    e1.pixels = Some((b, false));
    Fixture {
        root,
        samples: vec![e0, e1],
        rejected: vec![
            (ims[2].into(), "bad_csv_row", "line 4: Labels `['pleural effusion', 'laminar atelectasis' 'x']`: elements must be separated by commas".into()),
            (ims[3].into(), "bad_csv_row", "line 5: Projection `SIDEWAYS`".into()),
        ],
    }
}

const VINDR_LABELS: &str = "Aortic enlargement,Atelectasis,Calcification,Cardiomegaly,Clavicle fracture,Consolidation,Edema,Emphysema,Enlarged PA,ILD,Infiltration,Lung Opacity,Lung cavity,Lung cyst,Mediastinal shift,Nodule/Mass,Pleural effusion,Pleural thickening,Pneumothorax,Pulmonary fibrosis,Rib fracture,Other lesion,COPD,Lung tumor,Pneumonia,Tuberculosis,Other diseases,No finding";

/// A VinDr label row: 28 cells with 1 at `pos` (indices).
fn vindr_cells(pos: &[usize]) -> String {
    (0..28).map(|i| if pos.contains(&i) { "1" } else { "0" }).collect::<Vec<_>>().join(",")
}

/// VinDr-CXR: `annotations/` with the four CSVs, `train/` and `test/`
/// DICOMs named `<image_id>.dicom`, one MONOCHROME1; three readers per
/// training image. Aortic enlargement is column 0, Cardiomegaly 3,
/// Pleural effusion 16, No finding 27.
pub fn vindr(dir: &Path) -> Fixture {
    let root = dir.join("vindr-cxr/1.0.0");
    let ids = [
        "000434271f63a053c4128a0ba6352c7f",
        "00053190460d56c53cc3e57321387478",
        "0005e8e3701dfb1dd93d53e2ff537b6e",
        "001d127bad87592efe45a5c7678f8b8d",
        "0061ea5cf8a8bc3d5c0e3a3b1e8d0bd2",
    ];
    let mono1 = pattern(7, 4095);
    let mono2 = pattern(8, 4095);
    dicom(&root.join(format!("train/{}.dicom", ids[0])), "1.2.826.0.1.1", "MONOCHROME1", "", "F", &mono1);
    dicom(&root.join(format!("train/{}.dicom", ids[1])), "1.2.826.0.1.2", "MONOCHROME2", "", "M", &mono2);
    dicom(&root.join(format!("train/{}.dicom", ids[2])), "1.2.826.0.1.3", "MONOCHROME2", "", "M", &mono2);
    dicom(&root.join(format!("test/{}.dicom", ids[3])), "1.2.826.0.1.4", "MONOCHROME2", "", "F", &mono2);
    dicom(&root.join(format!("test/{}.dicom", ids[4])), "1.2.826.0.1.5", "MONOCHROME2", "", "F", &mono2);
    let ann = root.join("annotations");
    write(
        &ann.join("image_labels_train.csv"),
        &format!(
            "image_id,rad_ID,{VINDR_LABELS}\n{a},R11,{}\n{a},R7,{}\n{a},R10,{}\n{b},R2,{}\n{b},R3,{}\n{b},R5,{}\n{c},R1,{}\n{c},R2,0,0,0,2,{}\n",
            vindr_cells(&[3, 16]),
            vindr_cells(&[3]),
            vindr_cells(&[27]),
            vindr_cells(&[27]),
            vindr_cells(&[27]),
            vindr_cells(&[27]),
            vindr_cells(&[27]),
            &vindr_cells(&[27])[8..],
            a = ids[0],
            b = ids[1],
            c = ids[2],
        ),
    );
    write(&ann.join("image_labels_test.csv"), &format!("image_id,{VINDR_LABELS}\n{},{}\n", ids[3], vindr_cells(&[0])));
    write(
        &ann.join("annotations_train.csv"),
        &format!(
            "image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n{a},R11,Cardiomegaly,5.0,8.0,19.0,15.0\n{a},R11,Pleural effusion,1,12,6,18\n{a},R7,Cardiomegaly,6,8,18,14\n{a},R10,No finding,,,,\n{b},R2,No finding,,,,\n{b},R3,No finding,,,,\n{b},R5,No finding,,,,\n",
            a = ids[0],
            b = ids[1]
        ),
    );
    write(
        &ann.join("annotations_test.csv"),
        &format!("image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n{},R9,Aortic enlargement,10,2,14,9\n", ids[3]),
    );
    let labels = |pos: &[&str]| {
        ["Aortic enlargement", "Cardiomegaly", "Pleural effusion", "No finding"]
            .iter()
            .map(|n| l(n, if pos.contains(n) { 1.0 } else { 0.0 }))
            .collect::<Vec<_>>()
    };
    let mut a = Expect::new(&format!("vindr_{}", ids[0]));
    a.study_id = s(ids[0]);
    a.split = s("train");
    a.sex = s("F");
    a.age_years = Some(45.0);
    a.view_position = s("PA");
    // --readers any: Cardiomegaly (2 of 3), Pleural effusion (1 of 3), No finding (1 of 3).
    a.labels = labels(&["Cardiomegaly", "Pleural effusion", "No finding"]);
    a.boxes = Some(serde_json::json!([
        {"rad_id": "R11", "class": "Cardiomegaly", "x_min": 5.0, "y_min": 8.0, "x_max": 19.0, "y_max": 15.0},
        {"rad_id": "R11", "class": "Pleural effusion", "x_min": 1.0, "y_min": 12.0, "x_max": 6.0, "y_max": 18.0},
        {"rad_id": "R7", "class": "Cardiomegaly", "x_min": 6.0, "y_min": 8.0, "x_max": 18.0, "y_max": 14.0}
    ]));
    a.pixels = Some((mono1, true));
    let mut b = Expect::new(&format!("vindr_{}", ids[1]));
    b.study_id = s(ids[1]);
    b.split = s("train");
    b.sex = s("M");
    b.age_years = Some(45.0);
    b.view_position = s("PA");
    b.labels = labels(&["No finding"]);
    b.boxes = Some(serde_json::Value::Null);
    b.pixels = Some((mono2.clone(), false));
    let mut d = Expect::new(&format!("vindr_{}", ids[3]));
    d.study_id = s(ids[3]);
    d.split = s("test");
    d.sex = s("F");
    d.age_years = Some(45.0);
    d.view_position = s("PA");
    d.labels = labels(&["Aortic enlargement"]);
    d.boxes = Some(
        serde_json::json!([{"rad_id": "R9", "class": "Aortic enlargement", "x_min": 10.0, "y_min": 2.0, "x_max": 14.0, "y_max": 9.0}]),
    );
    d.pixels = Some((mono2, false));
    Fixture {
        root,
        samples: vec![a, b, d],
        rejected: vec![
            (ids[2].into(), "bad_csv_row", "image_labels_train.csv line 9: Cardiomegaly `2` is neither 0 nor 1".into()),
            (ids[4].into(), "unlisted_file", "not listed in image_labels_test.csv".into()),
        ],
    }
}

/// An ImageFolder tree `chest_xray/{NORMAL,PNEUMONIA}/…` (PNG, JPEG and a
/// DICOM) with a stray text file and an image outside any class folder;
/// the expected samples are those of an import with `--split train`.
pub fn folders(dir: &Path) -> Fixture {
    let root = dir.join("chest_xray");
    let a = pattern(10, 255);
    let b = pattern(11, 255);
    png_gray8(&root.join("NORMAL/IM-0001.png"), &a);
    png_gray8(&root.join("PNEUMONIA/person1_virus_6.png"), &b);
    jpeg_gray(&root.join("PNEUMONIA/person3_bacteria_10.jpeg"), &b);
    dicom(
        &root.join("PNEUMONIA/scan.dcm"),
        "1.2.826.0.9.1",
        "MONOCHROME2",
        "Doe_Jane_19570312",
        "F",
        &pattern(12, 4095),
    );
    write(&root.join("NORMAL/notes.txt"), "not an image\n");
    png_gray8(&root.join("loose.png"), &a);
    write(&root.join(".DS_Store"), "hidden\n");
    let class = |c: &str| vec![("class".to_string(), s(c))];
    let split = s("train");
    let mut e0 = Expect::new("chest_xray_NORMAL_IM-0001");
    e0.split = split.clone();
    e0.text = class("NORMAL");
    e0.pixels = Some((a, false));
    let mut e1 = Expect::new("chest_xray_PNEUMONIA_person1_virus_6");
    e1.split = split.clone();
    e1.text = class("PNEUMONIA");
    e1.pixels = Some((b, false));
    let mut e2 = Expect::new("chest_xray_PNEUMONIA_person3_bacteria_10");
    e2.split = split.clone();
    e2.text = class("PNEUMONIA");
    Fixture {
        root,
        samples: vec![e0, e1, e2],
        rejected: vec![
            ("NORMAL/notes.txt".into(), "unsupported_format", "not .png".into()),
            ("loose.png".into(), "not_in_class_folder", "not in a class folder".into()),
        ],
    }
}
