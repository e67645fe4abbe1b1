#!/bin/bash
#SBATCH --job-name=hello-mpi
#SBATCH --nodes=2
#SBATCH --ntasks=4
#SBATCH --time=00:05:00
#SBATCH --output=hello-mpi-%j.out
#
# The appliance's main job (make demo): an MPI program over two nodes. The
# agents launch the ranks themselves as PMIx servers: no mpirun, no ssh.
# HELLO names the MPI program (make builds one as build/tests/progs/mpi_hello;
# without HELLO, mpi_hello must be on the PATH).  The job ends with the
# step's status: a failed step fails the job.
echo "job $PHX_JOB_ID: $PHX_JOB_NUM_NODES nodes ($PHX_JOB_NODELIST), $PHX_NTASKS tasks"
phx run -N 2 -n 4 --label "${HELLO:-mpi_hello}"
rc=$?
echo "phx run exited with $rc"
exit $rc
