//! `dptrain import csv`: what it writes for good files, and clean refusals (exit code 2, one
//! stderr line naming the file, line, column or flag, nothing created) for bad ones.

mod common;

use std::ffi::OsString;
use std::path::Path;

use common::{dptrain_ok, read_labels, refuse, write_species_csv};
use dptrain::data::{Dataset, LabelBound, TargetKind};

/// `dptrain import csv FILE --out OUT EXTRA…`.
fn import(file: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    common::import_args(file, out, extra)
}

/// A temporary directory holding `d.csv` with `text`.
fn csv(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("d.csv");
    std::fs::write(&file, text).unwrap();
    (tmp, file)
}

fn labels_of(d: &Dataset) -> Vec<u32> {
    (0..d.rows()).map(|r| d.label(r).unwrap()).collect()
}

#[test]
fn string_labels_become_sorted_class_ids_with_their_names_in_labels_json() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("species.csv");
    write_species_csv(&file, 30);
    let out = tmp.path().join("data");
    let stdout = dptrain_ok(tmp.path(), import(&file, &out, &["--target", "species"]));
    assert!(stdout.contains("30 rows × 3 features"), "{stdout}");
    assert_eq!(read_labels(&out), ["setosa", "versicolor", "virginica"]);
    let d = Dataset::open(&out).unwrap();
    assert_eq!(d.kind(), TargetKind::Classification { classes: 3 });
    assert_eq!(d.features(), 3);
    assert_eq!(labels_of(&d)[..6], [0, 1, 2, 0, 1, 2]);
    // Features keep file order around the target column: sepal, petal, width.
    let text = std::fs::read_to_string(&file).unwrap();
    let first: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let expected: Vec<f32> = [0, 1, 3]
        .iter()
        .map(|&c| first[c].parse().unwrap())
        .collect();
    assert_eq!(d.x_row(0), expected.as_slice());
}

#[test]
fn ids_follow_sorted_names_not_the_order_of_first_appearance() {
    let (tmp, file) = csv(b"x,y\n1,pear\n2,apple\n3,fig\n4,apple\n");
    let out = tmp.path().join("data");
    dptrain_ok(tmp.path(), import(&file, &out, &["--target", "y"]));
    assert_eq!(read_labels(&out), ["apple", "fig", "pear"]);
    assert_eq!(labels_of(&Dataset::open(&out).unwrap()), [2, 0, 1, 0]);
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_accepted() {
    let (tmp, file) = csv(b"\xEF\xBB\xBFlabel,f1,f2\r\nno,1.5,2\r\nyes,-3,4e1\r\n");
    let out = tmp.path().join("data");
    dptrain_ok(tmp.path(), import(&file, &out, &["--target", "label"]));
    assert_eq!(read_labels(&out), ["no", "yes"]);
    let d = Dataset::open(&out).unwrap();
    assert_eq!(d.x(), &[1.5, 2.0, -3.0, 40.0]);
}

#[test]
fn numeric_targets_are_regression_and_several_targets_make_a_matrix() {
    let (tmp, file) = csv(b"a;b;c;d\n1;2;3;4\n5;6;7;8\n");
    let out = tmp.path().join("data");
    dptrain_ok(
        tmp.path(),
        import(&file, &out, &["--target", "d,1", "--delimiter", ";"]),
    );
    let d = Dataset::open(&out).unwrap();
    assert_eq!(d.kind(), TargetKind::Regression { outputs: 2 });
    assert_eq!(d.y_values().unwrap(), &[4.0, 2.0, 8.0, 6.0]);
    assert_eq!(d.x(), &[1.0, 3.0, 5.0, 7.0]);
    assert!(!out.join("labels.json").exists());
}

#[test]
fn integer_targets_are_classes_when_classification_is_asked() {
    let (tmp, file) = csv(b"3,0.1\n1,0.2\n3.0,0.3\n2,0.4\n");
    let out = tmp.path().join("data");
    dptrain_ok(
        tmp.path(),
        import(
            &file,
            &out,
            &["--target", "0", "--no-header", "--task", "classification"],
        ),
    );
    assert_eq!(read_labels(&out), ["1", "2", "3"]);
    assert_eq!(labels_of(&Dataset::open(&out).unwrap()), [2, 0, 2, 1]);
}

#[test]
fn quoted_fields_may_hold_the_delimiter() {
    let (tmp, file) = csv(b"x,name\n1,\"big, red\"\n2,small\n");
    let out = tmp.path().join("data");
    dptrain_ok(tmp.path(), import(&file, &out, &["--target", "name"]));
    assert_eq!(read_labels(&out), ["big, red", "small"]);
}

#[test]
fn an_existing_directory_without_a_dataset_is_used() {
    let (tmp, file) = csv(b"x,y\n1,a\n2,b\n");
    let out = tmp.path().join("data");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("README"), "mine").unwrap();
    dptrain_ok(tmp.path(), import(&file, &out, &["--target", "y"]));
    assert_eq!(std::fs::read_to_string(out.join("README")).unwrap(), "mine");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["README", "labels.json", "x.npy", "y.npy"]);
}

// --- bad input: exit 2, one line naming the place, nothing created -------------------------

#[test]
fn ragged_rows_are_refused_naming_the_line() {
    let (tmp, file) = csv(b"a,b,y\n1,2,x\n3,4,z\n5,6\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "line 4", "2 fields", "header has 3"],
    );
}

#[test]
fn an_empty_file_is_refused() {
    let (tmp, file) = csv(b"");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "empty"],
    );
}

#[test]
fn a_header_without_rows_is_refused() {
    let (tmp, file) = csv(b"a,y\r\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "no data rows"],
    );
}

#[test]
fn a_non_numeric_feature_is_refused_naming_line_and_column() {
    let (tmp, file) = csv(b"a,b,y\n1,2,x\n3,four,z\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &[
            "d.csv",
            "line 3",
            "column \"b\" (index 1)",
            "\"four\" is not a number",
        ],
    );
}

#[test]
fn a_missing_feature_is_refused_naming_line_and_column() {
    let (tmp, file) = csv(b"a,b,y\n1,2,x\n,4,z\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "line 3", "column \"a\" (index 0)", "missing value"],
    );
}

#[test]
fn an_infinite_feature_is_refused() {
    let (tmp, file) = csv(b"a,y\n1e300,x\n2,z\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "line 2", "not a finite"],
    );
}

#[test]
fn an_unknown_target_column_is_refused_naming_the_flag_and_the_columns() {
    let (tmp, file) = csv(b"a,b,y\n1,2,x\n3,4,z\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "label"]),
        &["--target", "no column named \"label\"", "a, b, y"],
    );
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "3"]),
        &["--target", "index 3 is out of range", "3 columns"],
    );
}

#[test]
fn a_label_column_with_a_single_class_is_refused() {
    let (tmp, file) = csv(b"a,y\n1,cat\n2,cat\n3,cat\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "single class", "\"cat\"", "column \"y\""],
    );
}

#[test]
fn a_target_mixing_numbers_and_text_is_refused_unless_classification_is_asked() {
    let (tmp, file) = csv(b"a,y\n1,2.5\n2,n/a\n3,1\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "line 3", "--task classification"],
    );
    dptrain_ok(
        tmp.path(),
        import(&file, &out, &["--target", "y", "--task", "classification"]),
    );
    assert_eq!(read_labels(&out), ["1", "2.5", "n/a"]);
}

#[test]
fn text_in_a_regression_target_is_refused_naming_line_and_column() {
    let (tmp, file) = csv(b"a,y\n1,2\n2,high\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y", "--task", "regression"]),
        &["d.csv", "line 3", "column \"y\"", "not a number"],
    );
}

#[test]
fn a_fractional_class_label_is_refused() {
    let (tmp, file) = csv(b"a,y\n1,0\n2,1.5\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y", "--task", "classification"]),
        &["d.csv", "line 3", "not an integer"],
    );
}

#[test]
fn an_out_directory_holding_a_dataset_is_refused_and_left_as_it_was() {
    let (tmp, file) = csv(b"a,y\n1,x\n2,z\n");
    let out = tmp.path().join("data");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("y.npy"), "precious").unwrap();
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["--out", "y.npy", "already exists"],
    );
}

#[test]
fn a_missing_file_and_bad_flags_are_refused() {
    let (tmp, file) = csv(b"a,y\n1,x\n2,z\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&tmp.path().join("nope.csv"), &out, &["--target", "y"]),
        &["nope.csv", "not found"],
    );
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y", "--delimiter", "::"]),
        &["--delimiter", "not one character"],
    );
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "a,y"]),
        &["--target", "no feature column is left"],
    );
    refuse(tmp.path(), import(&file, &out, &[]), &["usage"]);
}

#[test]
fn invalid_utf8_is_refused_naming_the_line() {
    let (tmp, file) = csv(b"a,y\n1,x\n2,\xff\xfe\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "UTF-8"],
    );
}

#[test]
fn a_test_split_reuses_the_training_labels_so_ids_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    let test = tmp.path().join("test.csv");
    std::fs::write(&train, "x,y\n1,ant\n2,bee\n3,cat\n").unwrap();
    std::fs::write(&test, "x,y\n4,cat\n5,bee\n").unwrap();
    let (tr, te) = (tmp.path().join("tr"), tmp.path().join("te"));
    dptrain_ok(tmp.path(), import(&train, &tr, &["--target", "y"]));
    let labels = tr.join("labels.json");
    let labels = labels.to_str().unwrap();
    dptrain_ok(
        tmp.path(),
        import(&test, &te, &["--target", "y", "--labels", labels]),
    );
    assert_eq!(read_labels(&te), ["ant", "bee", "cat"]);
    // A test split: its labels are bounded by the model it is evaluated with, not by its rows.
    assert_eq!(
        labels_of(&Dataset::open_with(&te, LabelBound::Model).unwrap()),
        [2, 1]
    );
    std::fs::write(&test, "x,y\n4,cat\n5,dog\n").unwrap();
    refuse(
        tmp.path(),
        import(
            &test,
            &tmp.path().join("te2"),
            &["--target", "y", "--labels", labels],
        ),
        &["test.csv", "line 3", "\"dog\"", "--labels"],
    );
}
