"""The Meterworks Streamlit app (``meterworks app``): leadership, finance, support and ops views
over the warehouse snapshot, and audited adjustments."""
