"""What a sweep leaves: storage, the fast trial read, status, export, the dashboard and the HTML report."""
