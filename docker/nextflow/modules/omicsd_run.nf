// omicsd as a Nextflow process: `omicsd run` (align -> call -> QC) of one sample on a GPU.
// With profile `awsbatch` it is an AWS Batch job on a GPU queue (label 'gpu': one GPU, omicsd's CUDA
// image). With profile `tes` Nextflow hands it to omicsd's own TES endpoint as a task whose executor
// is this image and command; cpus/memory become TES resources. omicsd matches GPUs through TES
// backend_parameters {"gpu": "1"}; whether Nextflow's TES executor sends `accelerator` that way
// depends on its version (not verified here), so for GPU work through TES run GPU-only TES workers.
process OMICSD_RUN {
    tag "${sample}"
    label 'gpu'
    container params.omicsd_image
    cpus 8
    memory '32 GB'
    accelerator 1

    input:
    tuple val(sample), path(reads1), path(reads2)
    path reference

    output:
    tuple val(sample), path("${sample}/${sample}.bam"), path("${sample}/${sample}.bam.bai"), emit: bam
    tuple val(sample), path("${sample}/${sample}.vcf.gz"), path("${sample}/${sample}.vcf.gz.tbi"), emit: vcf
    tuple val(sample), path("${sample}/${sample}.qc.json"), emit: qc

    script:
    """
    omicsd run --backend ${params.omicsd_backend} --threads ${task.cpus} \\
        --sample ${sample} -o ${sample} ${reference} ${reads1} ${reads2}
    """
}
