"""Policy profiles and the pure rules over them: levels, due times, working days, deadlines."""
