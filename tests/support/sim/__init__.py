"""A simulated GPU cluster behind the fake API server: nodes, a scheduler, a job controller, a CronJob
controller and a kubelet whose pods run as real containers (or, at scale, complete after a simulated time)."""
