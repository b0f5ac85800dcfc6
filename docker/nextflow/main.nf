#!/usr/bin/env nextflow
// A germline pipeline of one step per sample: omicsd run on a GPU (modules/omicsd_run.nf).
//   nextflow run docker/nextflow -profile awsbatch --samples samples.csv --reference s3://.../ref.fa
//   nextflow run docker/nextflow -profile tes      --samples samples.csv --reference /shared/ref.fa
// samples.csv: sample,reads1,reads2 (a header line first).
nextflow.enable.dsl = 2

include { OMICSD_RUN } from './modules/omicsd_run'

workflow {
    samples = Channel.fromPath(params.samples)
        .splitCsv(header: true)
        .map { row -> tuple(row.sample, file(row.reads1), file(row.reads2)) }
    OMICSD_RUN(samples, file(params.reference))
}
