#!/bin/bash
#SBATCH --job-name=hello-mpi
#SBATCH --nodes=2
#SBATCH --ntasks=4
#SBATCH --time=00:05:00
#SBATCH --output=hello-mpi-%j.out
#
# The appliance's main job (make demo): an MPI program over two nodes. The
# agents launch the ranks themselves as PMIx servers: no mpirun, no ssh.
# HELLO names the MPI program (make builds one as tests/progs/mpi_hello).
echo "job $PHX_JOB_ID: $PHX_JOB_NUM_NODES nodes ($PHX_JOB_NODELIST), $PHX_NTASKS tasks"
phx run -N 2 -n 4 --label "${HELLO:-mpi_hello}"
echo "phx run exited with $?"
